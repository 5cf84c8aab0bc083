// A project's permissions: (a) workers with access and pending requests — accept, reject, revoke,
// and for tracker admins pause / unpause the worker; (b) managers with a role on the project — the
// five role bits as checkboxes saved per row, and a form that gives another manager a role.
// The live refresh never overwrites a role row the user has changed but not saved.
import {ROLES} from "../api.js";
import {fill, h, table} from "../dom.js";
import {loadProject, projectHeader} from "../project_nav.js";
import {keepFocus, pauseButton, pausedBadge} from "./workers.js";

const yesNo = (v) => (v ? "yes" : "no");

/** Five labelled checkboxes in a fieldset; `idPrefix` keeps their ids unique on the page. */
function roleBoxes(idPrefix, legend, role) {
  const boxes = new Map();
  const set = h("fieldset.acc-roles", {}, h("legend", {class: legend.hidden ? "acc-sr-only" : null}, legend.text),
    ROLES.map((r) => {
      const box = h("input", {type: "checkbox", id: `${idPrefix}-${r.bit}`, name: r.name, value: r.bit,
        checked: Boolean(role & r.bit)});
      boxes.set(r.bit, box);
      return h("label", {for: box.id}, box, " ", r.name);
    }));
  return {set, boxes};
}

const roleOf = (boxes) => [...boxes].reduce((sum, [bit, box]) => sum + (box.checked ? bit : 0), 0);

function setBoxes(boxes, role) {
  for (const [bit, box] of boxes) box.checked = Boolean(role & bit);
}

export default {
  title: "Permissions",
  needs: "manager",
  async render(root, params, ctx) {
    const {api} = ctx;
    const project = await loadProject(api, params.id);
    const pid = project.id;
    const isAdmin = Boolean(ctx.session.tracker_admin);
    const accessRegion = h("div#acc-access");
    let accessKey = null;

    // --- (a) workers -------------------------------------------------------------------------------
    async function act(path, done) {
      try {
        await api.post(path);
        ctx.toast(done, "ok");
      } catch (err) {
        ctx.toast(err.message, "error");
      }
      await loadAccess();
    }

    function accessActions(a) {
      const w = a.worker;
      const who = `${w.alias} (#${w.id})`;
      const buttons = [];
      if (a.request) {
        buttons.push(h("button.primary", {type: "button", "data-action": "accept", "aria-label": `Accept ${who}`,
          onclick: () => act(`/project/accept_request/${pid}/${w.id}`, `Access granted to ${who}`)}, "Accept"));
        buttons.push(h("button", {type: "button", "data-action": "reject", "aria-label": `Reject ${who}`,
          onclick: () => act(`/project/reject_request/${pid}/${w.id}`, `Request of ${who} rejected`)}, "Reject"));
      } else {
        buttons.push(h("button.danger", {
          type: "button", "data-action": "revoke", "aria-label": `Revoke ${who}`,
          async onclick() {
            const yes = await ctx.confirm(`Revoke the access of worker ${who} to project “${project.name}”? ` +
              "It can no longer get or submit tasks there (tasks it holds stay held until released or expired).",
            {confirmLabel: "Revoke"});
            if (yes) await act(`/project/reject_request/${pid}/${w.id}`, `Access of ${who} revoked`);
          },
        }, "Revoke"));
      }
      if (isAdmin) buttons.push(pauseButton(ctx, w, loadAccess));
      return h("div.acc-actions", {}, buttons);
    }

    function drawAccess(accesses) {
      const key = JSON.stringify(accesses);
      if (key === accessKey) return; // unchanged: leave the rows (and focus) alone
      accessKey = key;
      keepFocus(accessRegion, () => fill(accessRegion, table([
        {title: "Worker", class: "num", cell: (a) => String(a.worker.id)},
        {title: "Alias", cell: (a) => h("a", {href: `#/worker/${a.worker.id}`}, a.worker.alias)},
        {title: "Assign", cell: (a) => yesNo(a.assign)},
        {title: "Submit", cell: (a) => yesNo(a.submit)},
        {title: "State", cell: (a) => (a.request ? h("span.badge.warn", "pending") : h("span.badge.ok", "granted"))},
        {title: "Worker state", cell: (a) => pausedBadge(a.worker.paused)},
        {title: "Actions", cell: accessActions},
      ], accesses, {
        caption: "Workers with access or a pending request",
        empty: "No worker has access or has asked for it.",
        rowAttrs: (a) => ({"data-worker-id": a.worker.id, "data-key": a.worker.id}),
      })));
    }

    /** The listing carries each worker's paused flag; an older gateway's may not, so ask /worker/get. */
    async function withPaused(accesses) {
      await Promise.all(accesses.filter((a) => typeof a.worker.paused !== "boolean").map(async (a) => {
        a.worker.paused = (await api.get(`/worker/get/${a.worker.id}`)).content.worker.paused;
      }));
      return accesses;
    }

    async function loadAccess() {
      let accesses;
      try {
        accesses = (await api.get(`/project/access_list/${pid}`)).content.accesses || [];
      } catch (err) {
        if (err.status !== 403) throw err;
        accessKey = null;
        fill(accessRegion, h("p.notice", "Listing and accepting workers needs the MANAGE_ACCESS role on this project."));
        return;
      }
      drawAccess(await withPaused(accesses));
    }

    // --- (b) managers with roles -----------------------------------------------------------------
    const rows = new Map(); // manager id → {tr, boxes, role (as saved), username, status}
    const tbody = h("tbody");
    const rolesTable = h("div.table-wrap", {}, h("table.stack.acc-role-table", {},
      h("caption", "Managers with a role on this project"),
      h("thead", {}, h("tr", {}, ["Manager", "Roles", "Actions"].map((t) => h("th", {scope: "col"}, t)))),
      tbody));
    const rolesEmpty = h("p.empty", "No manager has a role on this project.");
    const rolesRegion = h("div#acc-roles", {}, rolesTable, rolesEmpty);

    const isDirty = (row) => roleOf(row.boxes) !== row.role;

    function markDirty(row) {
      const dirty = isDirty(row);
      row.status.textContent = dirty ? "unsaved" : "";
      row.tr.classList.toggle("acc-dirty", dirty);
    }

    async function saveRole(managerId, username, role, after) {
      try {
        await api.post(`/manager/set_role_for_project/${pid}`, {manager: managerId, role});
        ctx.toast(role ? `Roles of ${username} saved` : `${username} no longer has a role on “${project.name}”`, "ok");
        if (after) after();
        return true;
      } catch (err) {
        ctx.toast(err.message, "error"); // 403: not your bits, your own role, a stronger manager…
        return false;
      } finally {
        await loadRoles();
      }
    }

    function roleRow(entry) {
      const m = entry.manager;
      const me = m.id === ctx.session.id;
      const {set, boxes} = roleBoxes(`acc-role-${m.id}`, {text: `Roles of ${m.username}`, hidden: true}, entry.role);
      const status = h("span.acc-status", {"aria-live": "polite"});
      const row = {boxes, role: entry.role, username: m.username, status};
      set.addEventListener("change", () => markDirty(row));
      row.tr = h("tr", {"data-manager-id": m.id, "data-key": m.id},
        h("td", {"data-label": "Manager"}, m.username, me ? h("span.notice", " (you)") : null),
        h("td", {"data-label": "Roles"}, set),
        h("td", {"data-label": "Actions"}, h("div.acc-actions", {},
          h("button", {type: "button", "data-action": "save", "aria-label": `Save roles of ${m.username}`,
            async onclick() {
              const role = roleOf(boxes);
              if (role === 0 && !(await ctx.confirm(
                `Remove every role of ${m.username} on project “${project.name}”?`, {confirmLabel: "Remove"}))) return;
              await saveRole(m.id, m.username, role, () => { row.role = role; markDirty(row); });
            }}, "Save"),
          status)));
      return row;
    }

    async function loadRoles() {
      const list = (await api.get(`/manager/list_for_project/${pid}`)).content.managers || [];
      const seen = new Set();
      for (const entry of list) {
        seen.add(entry.manager.id);
        const row = rows.get(entry.manager.id);
        if (!row) {
          rows.set(entry.manager.id, roleRow(entry));
        } else if (isDirty(row)) {
          row.role = entry.role; // the user's unsaved ticks stay; only "saved" moves
          markDirty(row);
        } else {
          row.role = entry.role;
          setBoxes(row.boxes, entry.role);
        }
      }
      for (const [id, row] of rows) if (!seen.has(id) && !isDirty(row)) rows.delete(id);
      placeRows();
    }

    /** Put the rows in id order, moving nodes only when the set changed (moving blurs focus). */
    function placeRows() {
      const wanted = [...rows.keys()].sort((a, b) => a - b).map((id) => rows.get(id).tr);
      const current = [...tbody.children];
      if (wanted.length !== current.length || wanted.some((tr, i) => tr !== current[i])) {
        const active = document.activeElement;
        tbody.replaceChildren(...wanted);
        if (active && active.isConnected && tbody.contains(active)) active.focus({preventScroll: true});
      }
      rolesTable.hidden = wanted.length === 0;
      rolesEmpty.hidden = wanted.length !== 0;
    }

    // --- the "Add manager" form -------------------------------------------------------------------
    const select = h("select#acc-add-manager", {name: "manager"});
    const selectError = h("p#acc-add-manager-error.field-error", {role: "alert", hidden: true});
    select.setAttribute("aria-describedby", selectError.id);
    const add = roleBoxes("acc-add-role", {text: "Roles", hidden: false}, 0);
    const addError = h("p#acc-add-role-error.field-error", {role: "alert", hidden: true});
    let managersKey = null;

    function showAddError(slot, message) {
      slot.textContent = message;
      slot.hidden = !message;
    }

    async function loadManagers() {
      const managers = (await api.get("/manager/list")).content.managers || [];
      const key = JSON.stringify(managers.map((m) => [m.id, m.username]));
      if (key === managersKey) return; // keep the open select as it is
      managersKey = key;
      const chosen = select.value;
      fill(select, h("option", {value: ""}, "Choose a manager…"),
        managers.map((m) => h("option", {value: m.id}, `${m.username} (#${m.id})`)));
      select.value = managers.some((m) => String(m.id) === chosen) ? chosen : "";
    }

    const addForm = h("form#acc-add-form.card.acc-add", {
      "aria-labelledby": "acc-add-h",
      async onsubmit(event) {
        event.preventDefault();
        showAddError(selectError, "");
        showAddError(addError, "");
        const managerId = Number(select.value);
        const role = roleOf(add.boxes);
        if (!managerId) return showAddError(selectError, "Choose a manager.");
        if (!role) return showAddError(addError, "Tick at least one role.");
        const username = select.selectedOptions[0].textContent;
        await saveRole(managerId, username, role, () => setBoxes(add.boxes, 0));
      },
    },
    h("h3#acc-add-h", "Add a manager"),
    h("div.field", {}, h("label", {for: select.id}, "Manager"), select, selectError),
    add.set, addError,
    h("button.primary", {type: "submit"}, "Add manager"));

    fill(root,
      projectHeader(project, "/permissions", "Permissions"),
      h("section", {"aria-labelledby": "acc-workers-h"},
        h("h2#acc-workers-h", "Workers"),
        h("p.hint", "Workers ask for access with POST /project/request_access; accept or reject their requests here." +
          (isAdmin ? " Pausing a worker stops it getting tasks on every project." : "")),
        accessRegion),
      h("section", {"aria-labelledby": "acc-managers-h"},
        h("h2#acc-managers-h", "Managers"),
        h("p.hint", "READ: see the project even when hidden. EDIT: change it. MANAGE_ACCESS: this screen. " +
          "SECRET: its secrets. MAINTENANCE: reset, reclaim and task repairs."),
        rolesRegion,
        addForm));

    const refresh = () => Promise.all([loadAccess(), loadRoles(), loadManagers()]);
    await refresh();
    return {refresh};
  },
};
