// The task browser of one project (#/project/<id>/tasks?status=failed&q=abc): filters kept in the
// hash query (a view can be bookmarked), cursor paging both ways (never offsets, contract §6.8),
// a selection of rows or of "every task matching the filter", and the bulk actions on it
// (retry, delete, set priority, move to another project).
import {fill, fmtTime, h} from "../dom.js";
import {loadProject, projectHeader} from "../project_nav.js";
import {hashQuery} from "../routes.js";

export const STATUS_FILTERS = ["new", "awaiting", "assigned", "failed", "closed"];
const PAGE_SIZES = ["20", "50", "100", "200", "500"];
const RECIPE_PREVIEW = 120;
const STATUS_NAMES = {1: "new", 2: "failed", 3: "closed"};

/** Held = an assignee and a live lease (§6.8); `lease_expires` 0 on a NEW task with an assignee
 *  means a lease that never expires. */
export function isHeld(task, now = Date.now() / 1000) {
  if (task.status !== 1 || !task.assignee) return false;
  return task.lease_expires === 0 || task.lease_expires > now;
}

/** What the listing's status filter would call the task: new, awaiting, assigned, failed, closed. */
export function statusName(task) {
  if (task.status !== 1) return STATUS_NAMES[task.status] || `status ${task.status}`;
  if (isHeld(task)) return "assigned";
  return task.verifications > 0 ? "awaiting" : "new";
}

/** A short description of the lease, or null when there is nothing to say. */
export function leaseText(task, now = Date.now() / 1000) {
  if (task.status !== 1 || !task.assignee) return null;
  if (task.lease_expires === 0) return `held by worker ${task.assignee}, lease never expires`;
  if (task.lease_expires > now) return `held by worker ${task.assignee}, lease expires ${fmtTime(task.lease_expires)}`;
  return `lease of worker ${task.assignee} expired ${fmtTime(task.lease_expires)}`;
}

const BADGE = {new: "", awaiting: "warn", assigned: "ok", failed: "bad", closed: ""};

export function statusBadge(task) {
  const name = statusName(task);
  return h("span.badge", {class: BADGE[name] || false}, name);
}

/** Filters as the hash query has them (unknown or malformed values fall back to the defaults). */
function filtersFromHash() {
  const q = hashQuery();
  const status = q.get("status") || "";
  const order = q.get("order") === "desc" ? "desc" : "asc";
  const limit = PAGE_SIZES.includes(q.get("limit")) ? q.get("limit") : "50";
  return {
    status: STATUS_FILTERS.includes(status) ? status : "",
    q: q.get("q") || "",
    assignee: /^\d+$/.test(q.get("assignee") || "") ? q.get("assignee") : "",
    order, limit,
  };
}

/** The hash of this screen with `filters` in its query (defaults left out). */
function hashFor(projectId, filters) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) {
    if (value && !(key === "order" && value === "asc") && !(key === "limit" && value === "50")) query.set(key, value);
  }
  const text = query.toString();
  return `#/project/${projectId}/tasks${text ? "?" + text : ""}`;
}

/** The selection filter of the bulk actions: the listing's filters, without paging or order. */
function actionFilter(filters) {
  const filter = {};
  if (filters.status) filter.status = filters.status;
  if (filters.q) filter.q = filters.q;
  if (filters.assignee) filter.assignee = Number(filters.assignee);
  return filter;
}

function describeFilter(filters) {
  const parts = [];
  if (filters.status) parts.push(`status ${filters.status}`);
  if (filters.q) parts.push(`recipe contains "${filters.q}"`);
  if (filters.assignee) parts.push(`assignee ${filters.assignee}`);
  return parts.length ? parts.join(", ") : "no filter: every task of the project";
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function recipePreview(task) {
  const shown = task.recipe.length > RECIPE_PREVIEW ? task.recipe.slice(0, RECIPE_PREVIEW) + "…" : task.recipe;
  return [h("code.recipe-preview", {}, shown),
    task.recipe_length > RECIPE_PREVIEW ? h("span.recipe-length", {}, ` (${task.recipe_length.toLocaleString()} characters)`) : null];
}

/** After redrawing a region, give focus back to the control that had it (same data-key). */
function keepFocus(region, redraw) {
  const key = region.contains(document.activeElement) ? document.activeElement.getAttribute("data-key") : null;
  redraw();
  if (key) {
    const again = region.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus({preventScroll: true});
  }
}

export default {
  title: "Tasks",
  needs: "manager",
  async render(root, params, ctx) {
    const projectId = Number(params.id);
    const project = await loadProject(ctx.api, projectId);
    const others = ((await ctx.api.get("/project/list")).content.projects || []).filter((p) => p.id !== projectId);

    const state = {
      filters: filtersFromHash(),
      cursors: [], // the `after` of every page before the current one, then the current one's
      page: null, // {tasks, next}
      selected: new Set(), // task ids
      allMatching: false, // the selection is the filter, not `selected`
      busy: false,
    };
    let loadSeq = 0;

    // --- filters ---------------------------------------------------------------------------------
    const uid = `tasks-${projectId}`;
    const inputs = {
      status: h("select", {id: `${uid}-status`, name: "status"},
        h("option", {value: ""}, "all"), STATUS_FILTERS.map((s) => h("option", {value: s}, s))),
      q: h("input", {id: `${uid}-q`, name: "q", type: "search", maxlength: "256", autocomplete: "off"}),
      assignee: h("input", {id: `${uid}-assignee`, name: "assignee", type: "number", min: "1", inputmode: "numeric"}),
      order: h("select", {id: `${uid}-order`, name: "order"},
        h("option", {value: "asc"}, "Oldest first"), h("option", {value: "desc"}, "Newest first")),
      limit: h("select", {id: `${uid}-limit`, name: "limit"}, PAGE_SIZES.map((n) => h("option", {value: n}, n))),
    };
    const labels = {status: "Status", q: "Recipe contains", assignee: "Assignee (worker id)", order: "Order", limit: "Page size"};
    const filterError = h("p.error", {role: "alert", hidden: true});
    const setInputs = () => {
      for (const [key, input] of Object.entries(inputs)) input.value = state.filters[key];
    };
    setInputs();
    const filterForm = h("form.card.task-filters", {
      "aria-label": "Filter tasks",
      onsubmit(event) {
        event.preventDefault();
        const next = {};
        for (const [key, input] of Object.entries(inputs)) next[key] = input.value.trim();
        if (next.assignee && !/^\d+$/.test(next.assignee)) {
          filterError.textContent = "The assignee is a worker id (a whole number ≥ 1).";
          filterError.hidden = false;
          return;
        }
        applyFilters(next);
      },
    },
    h("div.tk-filter-row", {}, Object.entries(inputs).map(([key, input]) =>
      h("div.field", {}, h("label", {for: input.id}, labels[key]), input))),
    h("div.tk-filter-actions", {},
      h("button.primary", {type: "submit"}, "Apply"),
      h("button", {type: "button", onclick() { applyFilters({status: "", q: "", assignee: "", order: "asc", limit: "50"}); }}, "Clear filters")),
    filterError);

    function applyFilters(next) {
      filterError.hidden = true;
      state.filters = next;
      state.cursors = [];
      state.selected.clear();
      state.allMatching = false;
      setInputs();
      // The hash changes without a hashchange (no re-render): the view can be bookmarked.
      history.replaceState(history.state, "", hashFor(projectId, next));
      load();
    }

    // --- selection and actions --------------------------------------------------------------------
    const selectionInfo = h("p.tk-selection-info", {"aria-live": "polite"});
    const selectPage = h("input", {type: "checkbox", id: `${uid}-select-page`, "data-key": "select-page",
      onchange() {
        state.allMatching = false;
        for (const t of (state.page ? state.page.tasks : [])) {
          if (selectPage.checked) state.selected.add(t.id);
          else state.selected.delete(t.id);
        }
        drawRows();
        drawSelection();
      }});
    const allMatchingButton = h("button", {type: "button", onclick() {
      state.allMatching = true;
      drawRows();
      drawSelection();
    }}, "Select all matching the filter");
    const clearButton = h("button", {type: "button", onclick() {
      state.allMatching = false;
      state.selected.clear();
      drawRows();
      drawSelection();
    }}, "Clear selection");

    const priorityInput = h("input", {id: `${uid}-priority`, type: "number", min: "-32768", max: "32767", step: "1", value: "0"});
    const moveSelect = h("select", {id: `${uid}-move`},
      others.length ? others.map((p) => h("option", {value: String(p.id)}, `${p.name} (#${p.id})`))
        : h("option", {value: ""}, "no other project"));
    const actionButtons = [
      h("button", {type: "button", onclick: () => act("retry")}, "Retry"),
      h("button.danger", {type: "button", onclick: () => act("delete")}, "Delete"),
    ];
    const priorityButton = h("button", {type: "button", onclick: () => act("priority")}, "Set priority");
    const moveButton = h("button", {type: "button", onclick: () => act("move")}, "Move");
    const actionsBox = h("section.card.task-actions", {"aria-labelledby": `${uid}-actions-title`},
      h("h2", {id: `${uid}-actions-title`}, "Selection"),
      selectionInfo,
      h("div.toolbar", {},
        h("label.tk-inline", {for: selectPage.id}, selectPage, " Select page"),
        allMatchingButton, clearButton),
      h("div.toolbar", {}, actionButtons,
        h("div.field", {}, h("label", {for: priorityInput.id}, "New priority"), priorityInput), priorityButton,
        h("div.field", {}, h("label", {for: moveSelect.id}, "Move to project"), moveSelect), moveButton));

    function selectionCount() {
      return state.allMatching ? null : state.selected.size;
    }

    function drawSelection() {
      const n = selectionCount();
      selectionInfo.textContent = state.allMatching
        ? `Every task matching the filter is selected (${describeFilter(state.filters)}).`
        : `${plural(n, "task")} selected.`;
      const none = !state.allMatching && n === 0;
      for (const b of [...actionButtons, priorityButton, moveButton]) b.disabled = none || state.busy;
      moveButton.disabled = moveButton.disabled || !others.length;
      const tasks = state.page ? state.page.tasks : [];
      selectPage.checked = state.allMatching || (tasks.length > 0 && tasks.every((t) => state.selected.has(t.id)));
      selectPage.disabled = state.allMatching || !tasks.length;
      clearButton.disabled = none;
    }

    /** Run one bulk action on the selection, after a confirmation naming the project. */
    async function act(kind) {
      const body = state.allMatching ? {filter: actionFilter(state.filters)} : {ids: [...state.selected]};
      let route;
      let what;
      if (kind === "retry") {
        route = "retry_tasks";
        what = "Retry";
      } else if (kind === "delete") {
        route = "delete_tasks";
        what = "Delete";
      } else if (kind === "priority") {
        const value = priorityInput.value.trim();
        if (!/^-?\d+$/.test(value) || Number(value) < -32768 || Number(value) > 32767) {
          ctx.toast("The priority is a whole number from -32768 to 32767.", "error");
          priorityInput.focus();
          return;
        }
        route = "update_tasks";
        body.priority = Number(value);
        what = `Set priority ${body.priority} on`;
      } else {
        const target = others.find((p) => String(p.id) === moveSelect.value);
        if (!target) return;
        route = "update_tasks";
        body.move_to = target.id;
        what = `Move to project "${target.name}"`;
      }
      const scope = state.allMatching
        ? `every task matching the filter (${describeFilter(state.filters)})`
        : plural(state.selected.size, "selected task");
      const ok = await ctx.confirm(`${what} ${scope} of project "${project.name}"?`,
        {confirmLabel: kind === "delete" ? "Delete" : what.split(" ")[0]});
      if (!ok) return;
      state.busy = true;
      drawSelection();
      try {
        const content = (await ctx.api.post(`/project/${route}/${projectId}`, body)).content || {};
        let message = `${plural(content.affected_tasks || 0, "task")} affected`;
        if (kind === "move") message += `, ${plural(content.conflicts || 0, "conflict")} (a task with the same hash is already there)`;
        ctx.toast(message, "ok");
        state.selected.clear();
        state.allMatching = false;
      } catch (err) {
        ctx.toast(`${what} failed: ${err.message}`, "error");
      } finally {
        state.busy = false;
      }
      await load();
    }

    // --- the listing ------------------------------------------------------------------------------
    const status = h("p.notice", {"aria-live": "polite"});
    const rowsRegion = h("div.task-rows");
    const prevButton = h("button", {type: "button", "data-key": "prev", onclick() {
      state.cursors.pop();
      load();
    }}, "Previous");
    const nextButton = h("button", {type: "button", "data-key": "next", onclick() {
      if (state.page && state.page.next !== null) {
        state.cursors.push(state.page.next);
        load();
      }
    }}, "Next");
    const pageLabel = h("span.tk-page-label");
    const pager = h("nav.tk-pager", {"aria-label": "Pages"}, prevButton, pageLabel, nextButton);

    function rowCheckbox(task) {
      const id = `${uid}-sel-${task.id}`;
      const box = h("input", {type: "checkbox", id, "data-key": `sel-${task.id}`,
        checked: state.allMatching || state.selected.has(task.id), disabled: state.allMatching,
        onchange() {
          if (box.checked) state.selected.add(task.id);
          else state.selected.delete(task.id);
          drawSelection();
        }});
      return [box, h("label.tk-sr-only", {for: id}, `Select task ${task.id}`)];
    }

    const COLUMNS = [
      {title: "Select", class: "sel", cell: rowCheckbox},
      {title: "ID", class: "num", cell: (t) => h("a", {href: `#/task/${t.id}`, "data-key": `open-${t.id}`}, `#${t.id}`)},
      {title: "Status", cell: (t) => [statusBadge(t), leaseText(t) ? h("span.tk-lease", {}, leaseText(t)) : null]},
      {title: "Priority", class: "num", cell: (t) => String(t.priority)},
      {title: "Assignee", cell: (t) => t.assignee ? h("a", {href: `#/worker/${t.assignee}`}, String(t.assignee)) : "—"},
      {title: "Retries", class: "num", cell: (t) => `${t.retries}/${t.max_retries}`},
      {title: "Verifications", class: "num", cell: (t) => `${t.verifications}/${t.verification_count}`},
      {title: "Recipe", class: "recipe", cell: recipePreview},
    ];

    let drawn = null; // what the rows show now (to leave them alone when a refresh changes nothing)

    function drawRows(onlyIfChanged = false) {
      const tasks = state.page ? state.page.tasks : [];
      const signature = JSON.stringify([state.cursors.length, tasks, tasks.map((t) => leaseText(t))]);
      if (onlyIfChanged && signature === drawn) return;
      drawn = signature;
      keepFocus(rowsRegion, () => {
        if (!tasks.length) {
          fill(rowsRegion, h("p.empty", state.cursors.length ? "No more tasks." : "No task matches the filter."));
          return;
        }
        fill(rowsRegion, h("div.table-wrap", {},
          h("table.stack.task-table", {},
            h("caption.tk-sr-only", {}, `Tasks of project ${project.name}`),
            h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", {scope: "col", class: c.class},
              c.class === "sel" ? h("span.tk-sr-only", {}, c.title) : c.title)))),
            h("tbody", {}, tasks.map((t) => h("tr", {"data-task-id": String(t.id)},
              COLUMNS.map((c) => h("td", {class: c.class, "data-label": c.title}, c.cell(t)))))))));
      });
      const pageNo = state.cursors.length + 1;
      pageLabel.textContent = `Page ${pageNo}`;
      prevButton.disabled = state.cursors.length === 0;
      nextButton.disabled = !state.page || state.page.next === null;
    }

    /** (Re-)read the current page; the selection and filters stay as they are. A quiet load (the
     *  live refresh) says nothing while it waits and leaves the page as it was when it fails. */
    async function load(quiet = false) {
      const mine = ++loadSeq;
      const f = state.filters;
      const query = {status: f.status, q: f.q, assignee: f.assignee, order: f.order, limit: f.limit,
        after: state.cursors.length ? state.cursors[state.cursors.length - 1] : undefined};
      if (!quiet) {
        status.textContent = "Loading…";
        filterError.hidden = true;
      }
      try {
        const content = (await ctx.api.get(`/project/tasks/${projectId}`, query)).content;
        if (mine !== loadSeq) return;
        state.page = {tasks: content.tasks || [], next: content.next ?? null};
        const said = `${plural(state.page.tasks.length, "task")} on this page (${describeFilter(f)}).`;
        if (status.textContent !== said) status.textContent = said; // a live region: say changes only
      } catch (err) {
        if (mine !== loadSeq) return;
        if (quiet) throw err;
        state.page = {tasks: [], next: null};
        status.textContent = "";
        filterError.textContent = err.message;
        filterError.hidden = false;
      }
      drawRows(quiet);
      drawSelection();
    }

    fill(root,
      projectHeader(project, "/tasks", "Tasks"),
      filterForm, actionsBox, status, rowsRegion, pager);
    await load();
    return {refresh: () => load(true)};
  },
};
