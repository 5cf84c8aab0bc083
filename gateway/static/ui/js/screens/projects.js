// Every project the visitor may read, with its visibility, state, motd, version and live task
// counts. Anonymous visitors see the public and private (non-hidden) projects; a manager also sees
// the hidden ones it has READ on (the server decides: GET /project/list).
import {optional} from "../api.js";
import {fill, fmtNumber, h, table} from "../dom.js";

const COUNTS = [
  ["new", "New"],
  ["assigned", "Assigned"],
  ["failed", "Failed"],
  ["awaiting", "Awaiting verification"],
  ["closed", "Closed"],
];

export function visibility(p) {
  return p.hidden ? "hidden" : p.public ? "public" : "private";
}

const VISIBILITY_BADGE = {public: "badge ok", private: "badge", hidden: "badge warn"};

/** Live counts of one project: new / failed / awaiting from the newest monitoring snapshot, closed
 *  from the project's own counter (live), assigned from the holders of live leases. */
export async function projectCounts(api, project) {
  const [snapshots, assignees] = await Promise.all([
    optional(api.get(`/project/monitoring/${project.id}`, {count: 1}).then((r) => r.content.snapshots || [])),
    optional(api.get(`/project/assignees/${project.id}`).then((r) => r.content.assignees || [])),
  ]);
  const snap = snapshots && snapshots[0];
  return {
    new: snap ? snap.new_task_count : null,
    failed: snap ? snap.failed_task_count : null,
    awaiting: snap ? snap.awaiting_verification_count : null,
    closed: project.closed_task_count ?? (snap ? snap.closed_task_count : null),
    assigned: assignees
      ? assignees.filter((a) => a.assignee !== "unassigned").reduce((sum, a) => sum + a.task_count, 0)
      : null,
  };
}

/** The texts of one row, keyed as the cells' data-key / data-count attributes. */
function rowTexts(p, counts) {
  const texts = {
    name: p.name,
    visibility: visibility(p),
    state: p.paused ? "paused" : "active",
    version: p.version || "—",
    motd: p.motd || "—",
  };
  for (const [key] of COUNTS) texts[key] = fmtNumber(counts[key]);
  return texts;
}

async function load(api) {
  const projects = (await api.get("/project/list")).content.projects || [];
  const counts = await Promise.all(projects.map((p) => projectCounts(api, p)));
  return projects.map((p, i) => ({project: p, texts: rowTexts(p, counts[i])}));
}

function cell(id, key, text, tag = "span") {
  return h(tag, {"data-project": id, "data-key": key}, text);
}

function drawTable(rows) {
  const columns = [
    {title: "Project", cell: ({project: p, texts}) =>
      h("a", {href: `#/project/${p.id}`, "data-project": p.id, "data-key": "name"}, texts.name)},
    {title: "Visibility", cell: ({project: p, texts}) =>
      h("span", {class: VISIBILITY_BADGE[texts.visibility], "data-project": p.id, "data-key": "visibility"}, texts.visibility)},
    {title: "State", cell: ({project: p, texts}) =>
      h("span", {class: texts.state === "paused" ? "badge warn" : "badge ok", "data-project": p.id, "data-key": "state"}, texts.state)},
    {title: "Version", cell: ({project: p, texts}) => cell(p.id, "version", texts.version)},
    {title: "MOTD", class: "pj-motd", cell: ({project: p, texts}) => cell(p.id, "motd", texts.motd)},
    ...COUNTS.map(([key, title]) => ({
      title, class: "num",
      cell: ({project: p, texts}) => h("span", {"data-project": p.id, "data-count": key}, texts[key]),
    })),
  ];
  return table(columns, rows, {
    caption: "Projects and their task counts",
    empty: "No projects yet.",
    rowAttrs: ({project: p}) => ({"data-project-row": p.id}),
  });
}

/** Update the texts (and badge classes) of the cells already on the page. */
function updateCells(region, rows) {
  for (const {project: p, texts} of rows) {
    for (const el of region.querySelectorAll(`[data-project="${p.id}"]`)) {
      const key = el.dataset.key || el.dataset.count;
      if (!(key in texts)) continue;
      if (el.textContent !== texts[key]) el.textContent = texts[key];
      if (key === "visibility") el.className = VISIBILITY_BADGE[texts.visibility];
      if (key === "state") el.className = texts.state === "paused" ? "badge warn" : "badge ok";
    }
  }
}

export default {
  title: "Projects",
  needs: null,
  async render(root, params, ctx) {
    const region = h("div.pj-list", {"aria-live": "off"});
    const summary = h("p.notice");
    let shownIds = "";

    const show = (rows) => {
      const ids = rows.map((r) => r.project.id).join(",");
      // Same projects in the same order: change texts only, so focus and scroll stay put.
      if (ids === shownIds && rows.length) updateCells(region, rows);
      else fill(region, drawTable(rows));
      shownIds = ids;
      summary.textContent = `${rows.length} project${rows.length === 1 ? "" : "s"}` +
        (ctx.session ? "." : ". Log in to see the hidden projects you manage.");
    };

    fill(root,
      h("div.pj-head", {},
        h("h1", "Projects"),
        ctx.session ? h("a#new-project.button.primary", {href: "#/project/new"}, "New project") : null),
      summary,
      region);
    show(await load(ctx.api));
    return {refresh: async () => show(await load(ctx.api))};
  },
};
