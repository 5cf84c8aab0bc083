// Create a project (#/project/new) or edit one (#/project/<id>/edit): every field of the contract
// (§6.4). The server validates; its message is shown next to the field it names.
import {ApiError} from "../api.js";
import {clearFieldErrors, field, fill, h, showFieldError} from "../dom.js";
import {loadProject, projectHeader} from "../project_nav.js";

const TEXTS = [
  ["name", "Name", null],
  ["clone_url", "Clone URL", "The URL workers clone, e.g. https://github.com/owner/name.git"],
  ["git_repo", "Git repository", "owner/name on GitHub; the webhook matches pushes by it."],
  ["version", "Version", "Usually the commit the workers should run; the webhook updates it."],
];
const INTEGERS = [
  ["priority", "Priority", "0 or more; informational."],
  ["chain", "Chain to project id", "Closed tasks are copied to this project; 0 = none."],
];
const RATES = [
  ["assign_rate", "Assign rate (tasks/s)", "0 = unlimited; e.g. 0.5 for one task every two seconds."],
  ["submit_rate", "Submit rate (tasks/s)", "0 = unlimited."],
];
const FLAGS = [
  ["public", "Public (any worker may get tasks; only a tracker admin may set this)"],
  ["hidden", "Hidden (only managers with a role see it)"],
  ["paused", "Paused (workers get no tasks)"],
];

/** Server messages that do not quote a field name but are about one. */
const UNQUOTED = [
  [/name already taken/i, "name"],
  [/public/i, "public"],
  [/chain/i, "chain"],
];

function buildFields(editing) {
  const fields = {};
  for (const [name, label, hint] of TEXTS) {
    fields[name] = field(label, h("input", {name, type: name === "clone_url" ? "url" : "text",
      autocomplete: "off", required: name === "name"}), hint);
  }
  fields.motd = field("Message of the day", h("textarea", {name: "motd", rows: 3}), "Shown to workers and on the projects list.");
  for (const [name, label, hint] of INTEGERS) {
    fields[name] = field(label, h("input", {name, type: "number", step: 1, min: 0, inputmode: "numeric"}), hint);
  }
  for (const [name, label, hint] of RATES) {
    fields[name] = field(label, h("input", {name, type: "number", step: "any", min: 0, inputmode: "decimal"}), hint);
  }
  for (const [name, label] of FLAGS) {
    if (name === "paused" && !editing) continue;
    fields[name] = field(label, h("input", {name, type: "checkbox"}));
  }
  return fields;
}

function setValues(fields, project) {
  for (const [name, f] of Object.entries(fields)) {
    if (f.input.type === "checkbox") f.input.checked = Boolean(project[name]);
    else f.input.value = project[name] ?? "";
  }
}

/** The JSON body: strings as typed, numbers as JSON numbers (an empty number box is left out, so
 *  the server's default or the stored value applies; ranges are the server's to check), booleans. */
function readValues(fields) {
  const body = {};
  for (const [name, f] of Object.entries(fields)) {
    const input = f.input;
    if (input.type === "checkbox") body[name] = input.checked;
    else if (input.type === "number") {
      // A number box's value is "" both when empty and when its text is not a number.
      if (input.value.trim() !== "") body[name] = Number(input.value);
      else if (input.validity && input.validity.badInput) body[name] = input.value; // let the server name it
    } else body[name] = input.value;
  }
  return body;
}

/** Only what differs from the stored project (the update is partial). */
function changes(body, project) {
  return Object.fromEntries(Object.entries(body).filter(([k, v]) => project[k] !== v));
}

/** The error at the field it is about; false when it names none. */
function showError(fields, err) {
  if (showFieldError(fields, err.message)) return true;
  for (const [pattern, name] of UNQUOTED) {
    const f = fields[name];
    if (f && pattern.test(err.message) && (err.status === 409 || err.status === 403)) {
      f.error.textContent = err.message;
      f.error.hidden = false;
      f.input.setAttribute("aria-invalid", "true");
      f.input.focus();
      return true;
    }
  }
  return false;
}

export default {
  title: "Project",
  needs: "manager",
  async render(root, params, ctx) {
    const editing = Boolean(params.id);
    const project = editing ? await loadProject(ctx.api, params.id) : null;
    const fields = buildFields(editing);
    if (project) setValues(fields, project);
    else for (const name of ["priority", "chain", "assign_rate", "submit_rate"]) fields[name].input.value = "0";
    const status = h("p#form-error.error", {role: "alert", hidden: true});
    const save = h("button.primary", {type: "submit"}, editing ? "Save" : "Create project");

    const submit = async (event) => {
      event.preventDefault();
      clearFieldErrors(fields);
      status.hidden = true;
      const body = readValues(fields);
      save.disabled = true;
      try {
        if (editing) {
          const changed = changes(body, project);
          if (Object.keys(changed).length) await ctx.api.post(`/project/update/${project.id}`, changed);
          ctx.toast(Object.keys(changed).length ? "Project saved" : "Nothing changed", "ok");
          ctx.navigate(`#/project/${project.id}`);
        } else {
          const id = (await ctx.api.post("/project/create", body)).content.id;
          ctx.toast("Project created", "ok");
          ctx.navigate(`#/project/${id}`);
        }
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (!showError(fields, err)) {
          status.textContent = err.message;
          status.hidden = false;
          status.focus();
        }
      } finally {
        save.disabled = false;
      }
    };

    const f = (name) => fields[name] && fields[name].row;
    const form = h("form.card.pj-form", {novalidate: true, "aria-labelledby": "pj-form-title", onsubmit: submit},
      status,
      h("fieldset", {}, h("legend", "Identity"), f("name"), f("clone_url"), f("git_repo"), f("version"), f("motd")),
      h("fieldset", {}, h("legend", "Scheduling"), h("div.pj-numbers", {}, f("priority"), f("chain"), f("assign_rate"), f("submit_rate"))),
      h("fieldset", {}, h("legend", "Visibility and state"), f("public"), f("hidden"), f("paused")),
      h("div.actions", {}, save,
        h("a.button", {href: editing ? `#/project/${project.id}` : "#/projects"}, "Cancel")));
    status.tabIndex = -1;

    fill(root,
      editing ? projectHeader(project, "/edit", "Edit") : h("h1#pj-form-title", "New project"),
      editing ? h("h2#pj-form-title", "Project settings") : null,
      form);
    fields.name.input.focus();
    return {};
  },
};
