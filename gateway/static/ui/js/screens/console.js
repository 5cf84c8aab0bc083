// The console (#/console): submit a task by hand, as a worker (POST /task/submit needs worker
// credentials, contract §6.5), with every submit field. The worker's id and secret live only in
// this page's inputs: never stored, gone when the screen is left. api.js sends no custom headers,
// so the submit is a fetch() of its own here.
import {clearFieldErrors, field, fill, h, showFieldError} from "../dom.js";

// The integer submit fields: name → [label, hint].
const INT_FIELDS = {
  priority: ["Priority", "−32768 … 32767 (default 0); higher is handed out first."],
  max_retries: ["Max retries", "0 … 32767 (default 0)."],
  max_assign_time: ["Max assign time (s)", "0 … 2147483647 seconds (default 0 = the lease never expires)."],
  hash64: ["Hash64", "Dedupe key: a 64-bit integer, signed or unsigned (default 0 = none)."],
  verification_count: ["Verification count", "0 … 32767 (default 0, stored as 1)."],
};

/** An integer typed in a box as JSON number text (exact: a hash64 is beyond what a JS number holds),
 *  or null when it is not a whole number. */
function integerText(value) {
  if (!/^[-+]?\d+$/.test(value)) return null;
  return BigInt(value).toString();
}

/** POST /task/submit as the worker; returns {status, data} (data: the envelope, or null). */
async function submitAsWorker(workerId, secret, bodyText) {
  const resp = await fetch("/task/submit", {
    method: "POST",
    credentials: "omit", // the worker's headers are the only identity of this request
    headers: {"Content-Type": "application/json", Accept: "application/json", "X-Worker-ID": workerId, "X-Secret": secret},
    body: bodyText,
  });
  let data = null;
  try {
    data = await resp.json();
  } catch (err) {
    data = null;
  }
  return {status: resp.status, data};
}

export default {
  title: "Console",
  needs: null,
  async render(root, params, ctx) {
    let projects = [];
    try {
      projects = (await ctx.api.get("/project/list")).content.projects || [];
    } catch (err) {
      ctx.toast("The project list could not be read: " + err.message, "error");
    }

    // --- the worker --------------------------------------------------------------------------------
    const worker = {
      id: field("Worker id", h("input", {name: "worker_id", type: "number", min: "1", inputmode: "numeric", autocomplete: "off"})),
      secret: field("Worker secret", h("input", {name: "secret", type: "password", autocomplete: "off", spellcheck: "false"}),
        "Kept in this page only: it is never stored and is gone when you leave the console."),
    };
    const alias = field("Alias for a new worker", h("input", {name: "alias", maxlength: "256", autocomplete: "off"}),
      "Optional; \"default_alias\" when empty.");
    const created = h("div.created-worker", {"aria-live": "polite"});
    const createButton = h("button", {type: "button", async onclick() {
      clearFieldErrors({alias});
      createButton.disabled = true;
      try {
        const name = alias.input.value.trim();
        const w = (await ctx.api.post("/worker/create", name ? {alias: name} : {})).content.worker;
        worker.id.input.value = String(w.id);
        worker.secret.input.value = w.secret;
        fill(created, h("div.card.secret-once", {role: "alert"},
          h("p", {}, h("strong", `Worker #${w.id} (${w.alias}) created.`),
            " Copy its secret now: it is shown only this once and can never be shown again, not even to an admin."),
          h("p", {}, h("code.tk-secret", {}, w.secret))));
      } catch (err) {
        if (!showFieldError({alias}, err.message)) ctx.toast("Creating a worker failed: " + err.message, "error");
      } finally {
        createButton.disabled = false;
      }
    }}, "Create a worker");

    // --- the task ----------------------------------------------------------------------------------
    const projectSelect = field("Project", h("select", {name: "project"},
      h("option", {value: ""}, projects.length ? "Choose a project" : "No project to choose"),
      projects.map((p) => h("option", {value: String(p.id)}, `${p.name} (#${p.id})`))));
    const projectId = field("Or project id", h("input", {name: "project_id", type: "number", min: "1", inputmode: "numeric"}),
      "A project's number, when it is not in the list (it wins over the list).");
    const fields = {
      recipe: field("Recipe", h("textarea", {name: "recipe", rows: "8", spellcheck: "false"}), "Required; any text (often JSON)."),
      unique_string: field("Unique string", h("input", {name: "unique_string", autocomplete: "off"}),
        "Optional; when given, hash64 is derived from it (then leave Hash64 empty)."),
    };
    for (const [name, [label, hint]] of Object.entries(INT_FIELDS)) {
      fields[name] = field(label, h("input", {name, inputmode: "numeric", autocomplete: "off"}), hint);
    }
    const result = h("div.submit-result", {role: "status"});

    /** The fields as the server's messages name them (the project: the box that was used). */
    const named = (usedId) => ({...fields, project: usedId ? projectId : projectSelect});
    const everyField = () => ({...fields, project: projectSelect, project_id: projectId, ...worker});

    const form = h("form.card.console-form", {
      "aria-labelledby": "console-task-title",
      async onsubmit(event) {
        event.preventDefault();
        clearFieldErrors(everyField());
        fill(result);
        const id = worker.id.input.value.trim();
        const secret = worker.secret.input.value.trim();
        if (!/^\d+$/.test(id)) return showFieldError(worker, "invalid field 'id': a worker id (create one above)");
        if (!secret) return showFieldError(worker, "invalid field 'secret': the worker's secret is required");

        // Only the filled fields are sent, integers as JSON numbers (built as text: see integerText).
        const usedId = projectId.input.value.trim() !== "";
        const parts = [];
        const project = usedId ? projectId.input.value.trim() : projectSelect.input.value;
        if (project) {
          const text = integerText(project);
          if (text === null) return showFieldError(named(usedId), "invalid field 'project': must be a whole number");
          parts.push(`"project":${text}`);
        }
        if (fields.recipe.input.value !== "") parts.push(`"recipe":${JSON.stringify(fields.recipe.input.value)}`);
        if (fields.unique_string.input.value !== "") parts.push(`"unique_string":${JSON.stringify(fields.unique_string.input.value)}`);
        for (const name of Object.keys(INT_FIELDS)) {
          const value = fields[name].input.value.trim();
          if (value === "") continue;
          const text = integerText(value);
          if (text === null) return showFieldError(fields, `invalid field '${name}': must be a whole number`);
          parts.push(`${JSON.stringify(name)}:${text}`);
        }

        submitButton.disabled = true;
        try {
          const {status, data} = await submitAsWorker(id, secret, `{${parts.join(",")}}`);
          if (status === 200 && data && data.ok) {
            const taskId = data.content && data.content.id;
            fill(result, h("p.tk-ok", {}, `ok: task #${taskId} submitted`,
              ctx.session ? [" — ", h("a", {href: `#/task/${taskId}`}, "open it")] : null, "."));
            ctx.toast(`Task #${taskId} submitted`, "ok");
            return;
          }
          let message = (data && data.message) || `HTTP ${status}`;
          if (status === 409) message = `${message} — the project already stores a task with this hash`;
          if (status === 401) message = `${message} — check the worker id and secret`;
          if (status === 429 && data && data.rate_limit_delay) message += ` (retry in ${Math.ceil(data.rate_limit_delay)} s)`;
          if (!showFieldError(named(usedId), message)) fill(result, h("p.error", {}, `Not submitted (HTTP ${status}): ${message}`));
        } catch (err) {
          // fetch() refuses header values outside Latin-1, and the network may be down.
          fill(result, h("p.error", {}, "Not submitted: " + err.message));
        } finally {
          submitButton.disabled = false;
        }
      },
    },
    h("h2#console-task-title", "Task"),
    projectSelect.row, projectId.row,
    fields.recipe.row,
    Object.keys(INT_FIELDS).filter((n) => n !== "hash64").map((n) => fields[n].row),
    fields.hash64.row, fields.unique_string.row,
    h("button.primary", {type: "submit"}, "Submit task"),
    result);
    const submitButton = form.querySelector("button[type=submit]");

    fill(root,
      h("h1", "Console"),
      h("p", {}, "Submit a task by hand, as a worker would: the worker needs the SUBMIT permission on the project."),
      h("section.card.console-worker", {"aria-labelledby": "console-worker-title"},
        h("h2#console-worker-title", "Worker"),
        h("div.console-grid", {}, worker.id.row, worker.secret.row),
        h("div.console-create", {}, alias.row, createButton),
        created),
      form);
    return {}; // nothing here changes on its own: the live refresh leaves the console alone
  },
};
