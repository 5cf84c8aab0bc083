// One task (#/task/<id>): every TaskRow field with the whole recipe, and for a task that is neither
// held nor closed an edit form (POST /task/edit/:id) with an optional retry; Retry and Delete.
import {ApiError} from "../api.js";
import {clearFieldErrors, field, fill, fmtNumber, fmtTime, h, showFieldError} from "../dom.js";
import {isHeld, leaseText, statusBadge} from "./tasks.js";

// The editable fields: name → [label, hint]; integers all (the recipe aside).
const EDITABLE = {
  priority: ["Priority", "−32768 … 32767; higher is handed out first."],
  max_retries: ["Max retries", "0 … 32767 failed releases before the task fails."],
  max_assign_time: ["Max assign time (s)", "Lease length in seconds; 0 = the lease never expires."],
  verification_count: ["Verification count", "Workers that must agree before the task closes (0 is stored as 1)."],
};

function leaseFacts(task) {
  const now = Date.now() / 1000;
  if (!task.lease_expires) return isHeld(task, now) ? "never expires" : "—";
  const when = fmtTime(task.lease_expires);
  return task.lease_expires > now ? when : `${when} (expired)`;
}

function facts(task, project) {
  const projectName = project ? project.name : `project ${task.project}`;
  const lease = leaseText(task);
  const rows = [
    ["Project", h("a", {href: `#/project/${task.project}`}, projectName)],
    ["Status", [statusBadge(task), lease ? h("span.tk-lease", {}, lease) : null]],
    ["Assignee", task.assignee ? h("a", {href: `#/worker/${task.assignee}`}, `worker ${task.assignee}`) : "none"],
    ["Last assigned", fmtTime(task.assign_time)],
    ["Lease expires", leaseFacts(task)],
    ["Verifications", `${task.verifications} of ${task.verification_count}`],
    ["Retries", `${task.retries} of ${task.max_retries}`],
    ["Priority", String(task.priority)],
    ["Max assign time", task.max_assign_time ? `${fmtNumber(task.max_assign_time)} s` : "0 (never expires)"],
    ["Hash64", task.hash64 && task.hash64 !== "0" ? String(task.hash64) : "0 (none)"],
    ["Recipe length", `${fmtNumber(task.recipe_length)} characters`],
  ];
  return h("dl.facts.task-facts", {}, rows.map(([dt, dd]) => [h("dt", dt), h("dd", {}, dd)]));
}

/** GET /task/view/:id, with `hash64` kept exact: a 64-bit integer loses digits as a JS number, so
 *  it is read from the answer's text as a string of digits (a key inside a JSON string would have
 *  its quotes escaped, so the pattern only finds the real one). */
async function viewTask(id) {
  let resp;
  try {
    resp = await fetch(`/task/view/${id}`, {credentials: "same-origin", headers: {Accept: "application/json"}});
  } catch (err) {
    throw new ApiError(0, "The tracker cannot be reached", null);
  }
  const text = await resp.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ApiError(resp.status, `HTTP ${resp.status}`, null);
  }
  if (!resp.ok || !data.ok) throw new ApiError(resp.status, data.message || `HTTP ${resp.status}`, data);
  const task = data.content.task;
  const exact = /"hash64"\s*:\s*(-?\d+)/.exec(text);
  task.hash64 = exact ? exact[1] : String(task.hash64);
  return task;
}

export default {
  title: "Task",
  needs: "manager",
  async render(root, params, ctx) {
    const taskId = Number(params.id);
    let task = await viewTask(taskId);
    let project = null;
    try {
      project = (await ctx.api.get(`/project/get/${task.project}`)).content.project;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err; // the task still shows, with the project's id only
    }
    const listHash = `#/project/${task.project}/tasks`;
    const projectName = project ? project.name : `project ${task.project}`;

    const factsRegion = h("div.task-facts-region");
    const recipePre = h("pre.task-recipe", {tabindex: "0", "aria-label": "Recipe"});
    const formRegion = h("section.task-edit-region");
    let form = null; // {el, fields, baseline}

    const retryButton = h("button", {type: "button", async onclick() {
      try {
        const content = (await ctx.api.post(`/project/retry_tasks/${task.project}`, {ids: [taskId]})).content;
        ctx.toast(content.affected_tasks ? "Task retried: it is NEW again, retries 0, unassigned." : "Nothing to retry (a closed task stays closed).",
          content.affected_tasks ? "ok" : "info");
      } catch (err) {
        ctx.toast("Retry failed: " + err.message, "error");
      }
      await refresh(false);
    }}, "Retry");
    const deleteButton = h("button.danger", {type: "button", async onclick() {
      const ok = await ctx.confirm(`Delete task #${taskId} of project "${projectName}"? It cannot be undone.`, {confirmLabel: "Delete"});
      if (!ok) return;
      try {
        await ctx.api.post(`/project/delete_tasks/${task.project}`, {ids: [taskId]});
        ctx.toast(`Task #${taskId} deleted.`, "ok");
        ctx.navigate(listHash);
      } catch (err) {
        ctx.toast("Delete failed: " + err.message, "error");
      }
    }}, "Delete");

    function editable() {
      return task.status !== 3 && !isHeld(task);
    }

    /** The values the form would send, as strings, by field name. */
    function values(fields) {
      const out = {};
      for (const [name, f] of Object.entries(fields)) if (name !== "retry") out[name] = f.input.value;
      return out;
    }

    /** Does the form already hold the task's current values (nothing to rebuild)? */
    function sameAsForm() {
      return form.baseline.recipe === task.recipe
        && Object.keys(EDITABLE).every((name) => form.baseline[name] === String(task[name]));
    }

    function dirty() {
      if (!form) return false;
      const now = values(form.fields);
      return form.fields.retry.input.checked || Object.keys(now).some((k) => now[k] !== form.baseline[k]);
    }

    function buildForm() {
      const fields = {
        recipe: field("Recipe", h("textarea", {name: "recipe", rows: "10", spellcheck: "false"})),
      };
      for (const [name, [label, hint]] of Object.entries(EDITABLE)) {
        fields[name] = field(label, h("input", {name, type: "number", step: "1"}), hint);
      }
      fields.retry = field("Retry after saving (status NEW, retries 0, unassigned)", h("input", {name: "retry", type: "checkbox"}));
      fields.recipe.input.value = task.recipe;
      for (const name of Object.keys(EDITABLE)) fields[name].input.value = String(task[name]);
      const formError = h("p.error", {role: "alert", hidden: true});
      const el = h("form.card.task-edit", {
        "aria-labelledby": "task-edit-title",
        async onsubmit(event) {
          event.preventDefault();
          clearFieldErrors(fields);
          formError.hidden = true;
          const body = {};
          const now = values(fields);
          for (const [name, value] of Object.entries(now)) {
            if (value === form.baseline[name]) continue;
            if (name === "recipe") {
              body.recipe = value;
            } else if (!/^-?\d+$/.test(value.trim())) {
              showFieldError(fields, `invalid field '${name}': must be a whole number`);
              return;
            } else {
              body[name] = Number(value.trim());
            }
          }
          if (fields.retry.input.checked) body.retry = true;
          if (!Object.keys(body).length) {
            formError.textContent = "Nothing changed.";
            formError.hidden = false;
            return;
          }
          try {
            const saved = (await ctx.api.post(`/task/edit/${taskId}`, body)).content.task;
            task = {...saved, hash64: task.hash64}; // not editable; the exact digits we already have
            ctx.toast(body.retry ? "Task saved and retried." : "Task saved.", "ok");
            form = null; // the saved values become the new baseline
            draw();
          } catch (err) {
            if (!showFieldError(fields, err.message)) {
              // 409 "Task is assigned" / "Task is closed": the facts change, so show them too.
              ctx.toast("Saving failed: " + err.message, "error");
              formError.textContent = err.message;
              formError.hidden = false;
              if (err.status === 409) await refresh(false);
            }
          }
        },
      },
      h("h2#task-edit-title", "Edit"),
      Object.values(fields).map((f) => f.row),
      formError,
      h("button.primary", {type: "submit"}, "Save"));
      return {el, fields, baseline: values(fields)};
    }

    /** The edit region: a form for an editable task (kept while the user is editing it), else why not. */
    function drawForm(force) {
      if (editable()) {
        if (form && !force && (dirty() || formRegion.contains(document.activeElement) || sameAsForm())) return;
        form = buildForm();
        fill(formRegion, form.el);
      } else {
        if (form && dirty()) return; // keep what was typed; saving will say why it cannot be saved
        form = null;
        fill(formRegion, h("p.notice", task.status === 3
          ? "A closed task cannot be edited."
          : "The task is held by a worker: it can be edited once it is released or its lease expires."));
      }
    }

    let drawnFacts = null; // the facts shown now: a refresh that changes nothing leaves them alone

    function draw(forceForm = true) {
      const signature = JSON.stringify([task, leaseFacts(task), leaseText(task)]);
      if (signature !== drawnFacts) {
        drawnFacts = signature;
        fill(factsRegion, facts(task, project));
        recipePre.textContent = task.recipe;
      }
      retryButton.hidden = task.status === 3;
      drawForm(forceForm);
    }

    /** Re-read the task; a form being edited is left alone unless `forceForm`. */
    async function refresh(forceForm = false) {
      try {
        task = await viewTask(taskId);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          drawnFacts = null;
          fill(factsRegion, h("p.error", {role: "alert"}, "This task no longer exists."));
          return;
        }
        throw err;
      }
      draw(forceForm);
    }

    fill(root,
      h("p.crumbs", {}, h("a", {href: "#/projects"}, "Projects"), " / ",
        h("a", {href: `#/project/${task.project}`}, projectName), " / ",
        h("a", {href: listHash}, "Tasks")),
      h("h1", `Task #${taskId}`),
      h("p", {}, h("a", {href: listHash}, `Back to the tasks of ${projectName}`)),
      factsRegion,
      h("div.toolbar", {}, retryButton, deleteButton),
      h("h2", "Recipe"),
      recipePre,
      formRegion);
    draw();
    return {refresh: () => refresh(false)};
  },
};
