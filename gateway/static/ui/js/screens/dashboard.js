// A project's dashboard: its facts, the task counts now (status doughnut), a timeline of the
// monitoring snapshots over a chosen range, tasks per assignee, throughput and an ETA, and the
// maintenance buttons. Every chart has a text alternative (aria-label and a table or a summary).
import {ApiError, optional} from "../api.js";
import {fill, fmtNumber, fmtTime, h} from "../dom.js";
import {loadProject, projectHeader} from "../project_nav.js";
import {destroyCharts, makeChart, seriesColors, themeColors, thin, timeTick, updateChart} from "../charts.js";
import {visibility} from "./projects.js";

const PRESETS = {hour: 3600, day: 86400, week: 7 * 86400};
const TIMELINE = [
  ["new", "New", "new_task_count"],
  ["failed", "Failed", "failed_task_count"],
  ["closed", "Closed", "closed_task_count"],
  ["awaiting", "Awaiting verification", "awaiting_verification_count"],
];
const ROLE_EDIT = 2;
const ROLE_MAINTENANCE = 16;
const GIT_REPO = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

/** The caller's role bits on the project: which buttons to show (the server checks again).
 *  Anonymous → 0; a tracker admin → all; unknown (the list failed) → all, and the server decides. */
async function myRole(ctx, projectId) {
  if (!ctx.session) return 0;
  if (ctx.session.tracker_admin) return 31;
  try {
    const managers = (await ctx.api.get(`/manager/list_for_project/${projectId}`)).content.managers || [];
    const mine = managers.find((m) => m.manager.id === ctx.session.id);
    return mine ? mine.role : 0;
  } catch (err) {
    if (err instanceof ApiError) return 31;
    throw err;
  }
}

const now = () => Math.floor(Date.now() / 1000);

/** "2026-12-05T07:46" (a datetime-local value, local time) for unix seconds. */
function localInput(seconds) {
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function fmtRate(rate) {
  return rate ? `${rate} tasks/s` : "unlimited";
}

/** Closed tasks per second over the snapshots (oldest first), from the project's closure counter. */
export function throughput(snapshots) {
  if (snapshots.length < 2) return 0;
  const first = snapshots[0];
  const last = snapshots[snapshots.length - 1];
  const dt = last.time_stamp - first.time_stamp;
  return dt > 0 ? Math.max(0, last.closed_task_count - first.closed_task_count) / dt : 0;
}

function gitRepo(repo) {
  if (!repo) return "—";
  return GIT_REPO.test(repo) ? h("a", {href: `https://github.com/${repo}`, rel: "noopener noreferrer"}, repo) : repo;
}

function facts(p) {
  const row = (term, value, id) => [h("dt", term), h("dd", id ? {id} : {}, value)];
  return h("dl.facts", {},
    row("Git repository", gitRepo(p.git_repo), "pj-git"),
    row("Clone URL", p.clone_url ? h("code", p.clone_url) : "—"),
    row("Message of the day", p.motd || "—", "pj-motd"),
    row("Version", p.version ? h("code", p.version) : "—", "pj-version"),
    row("Priority", String(p.priority), "pj-priority"),
    row("Chain", p.chain ? h("a", {href: `#/project/${p.chain}`}, `project ${p.chain}`) : "none"),
    row("Assign rate", fmtRate(p.assign_rate)),
    row("Submit rate", fmtRate(p.submit_rate)),
    row("Visibility", visibility(p), "pj-visibility"),
    row("State", p.paused ? "paused" : "active", "pj-state"));
}

/** The numbers of the status doughnut. A NEW task with a live lease counts as assigned, not new. */
function statusNumbers(latest, assigned, project) {
  const newCount = latest ? Math.max(0, latest.new_task_count - (assigned || 0)) : null;
  return [
    ["new", "New (not assigned)", newCount],
    ["assigned", "Assigned", assigned],
    ["failed", "Failed", latest ? latest.failed_task_count : null],
    ["closed", "Closed", project.closed_task_count ?? (latest ? latest.closed_task_count : null)],
    ["awaiting", "Awaiting verification", latest ? latest.awaiting_verification_count : null],
  ];
}

function numbersTable(caption, rows, id) {
  return h("table.pj-numbers-table", {id}, h("caption", caption),
    h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Status"), h("th.num", {scope: "col"}, "Tasks"))),
    h("tbody", {}, rows.map(([key, label, value]) =>
      h("tr", {}, h("th", {scope: "row"}, label), h("td.num", {"data-status": key}, fmtNumber(value))))));
}

export default {
  title: "Project dashboard",
  needs: null,
  async render(root, params, ctx) {
    const id = Number(params.id);
    let project = await loadProject(ctx.api, id);
    const charts = [];
    let range = {preset: "hour"};
    let sequence = 0; // a slow answer must not overwrite a newer one (range changed meanwhile)

    // --- regions ------------------------------------------------------------------------------
    const header = h("div.pj-header");
    const actions = h("div.toolbar.pj-actions", {role: "group", "aria-label": "Maintenance"});
    const factsBox = h("div");
    const statusTable = h("div");
    const speed = h("dl.facts.pj-speed");
    const rangeError = h("p.error", {role: "alert", hidden: true});
    const timelineSummary = h("p#pj-timeline-summary.notice");
    const assigneeTable = h("div");
    const canvases = {
      timeline: h("canvas#pj-timeline", {role: "img", "aria-label": "Timeline of task counts"}),
      status: h("canvas#pj-status", {role: "img", "aria-label": "Task status"}),
      assignees: h("canvas#pj-assignees", {role: "img", "aria-label": "Tasks per assignee"}),
    };

    // --- the range picker -----------------------------------------------------------------------
    const rangeSelect = h("select#pj-range", {
      onchange() {
        custom.hidden = rangeSelect.value !== "custom";
        if (rangeSelect.value === "custom") {
          const {from, to} = bounds(); // start from what is shown now
          fromInput.value = localInput(from);
          toInput.value = localInput(to + 60);
        } else {
          range = {preset: rangeSelect.value};
          reload();
        }
      },
    }, h("option", {value: "hour"}, "Last hour"), h("option", {value: "day"}, "Last day"),
    h("option", {value: "week"}, "Last week"), h("option", {value: "custom"}, "Custom"));
    const fromInput = h("input#pj-from", {type: "datetime-local", value: localInput(now() - 3600)});
    const toInput = h("input#pj-to", {type: "datetime-local", value: localInput(now() + 60)});
    const custom = h("form.pj-custom", {
      hidden: true,
      onsubmit(event) {
        event.preventDefault();
        const from = Math.floor(new Date(fromInput.value).getTime() / 1000);
        const to = Math.floor(new Date(toInput.value).getTime() / 1000);
        if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) {
          rangeError.textContent = "Choose a start before the end.";
          rangeError.hidden = false;
          return;
        }
        range = {preset: "custom", from, to};
        reload();
      },
    },
    h("label", {for: "pj-from"}, "From"), fromInput,
    h("label", {for: "pj-to"}, "To"), toInput,
    h("button", {type: "submit"}, "Show"));

    const bounds = () => {
      if (range.preset === "custom") return {from: range.from, to: range.to};
      const to = now();
      return {from: Math.max(1, to - PRESETS[range.preset]), to};
    };

    // --- maintenance ----------------------------------------------------------------------------
    const pauseButton = h("button#pj-pause", {type: "button", onclick: () => togglePause()}, "Pause");
    const maintenance = (label, path, question) => h("button.danger", {
      type: "button",
      async onclick() {
        if (!(await ctx.confirm(question(project.name), {confirmLabel: label}))) return;
        try {
          const answer = await ctx.api.post(`/project/${path}/${id}`);
          const n = answer.content ? answer.content.affected_tasks : 0;
          ctx.toast(`${fmtNumber(n)} task${n === 1 ? "" : "s"} affected`, "ok");
        } catch (err) {
          ctx.toast(err.message, "error");
        }
        await reload();
      },
    }, label);
    const togglePause = async () => {
      try {
        await ctx.api.post(`/project/update/${id}`, {paused: !project.paused});
        ctx.toast(project.paused ? "Project resumed" : "Project paused", "ok");
      } catch (err) {
        ctx.toast(err.message, "error");
      }
      await reload();
    };
    const role = await myRole(ctx, id);
    if (role & ROLE_EDIT) actions.append(pauseButton);
    if (role & ROLE_MAINTENANCE) {
      actions.append(
        maintenance("Reset failed", "reset_failed_tasks",
          (name) => `Reset every failed task of project "${name}" to new, with its retries set to 0?`),
        maintenance("Reclaim assigned", "reclaim_assigned_tasks",
          (name) => `Take every assigned task of project "${name}" back from its worker? Their releases will then be ignored.`),
        maintenance("Hard reset", "hard_reset",
          (name) => `Delete ALL tasks of project "${name}" (new, failed and closed)? This cannot be undone.`));
    }

    // --- layout ---------------------------------------------------------------------------------
    const card = (title, id, ...body) => h("section.card.pj-card", {"aria-labelledby": id}, h("h2", {id}, title), body);
    fill(root,
      header,
      actions.childElementCount ? actions : null,
      h("div.grid.pj-grid", {},
        card("Facts", "pj-facts-title", factsBox),
        card("Status now", "pj-status-title", h("div.chart.pj-doughnut", {}, canvases.status), statusTable),
        card("Throughput", "pj-speed-title", speed)),
      card("Timeline", "pj-timeline-title",
        h("div.toolbar", {}, h("label", {for: "pj-range"}, "Time range"), rangeSelect, custom),
        rangeError,
        h("div.chart", {}, canvases.timeline),
        timelineSummary),
      card("Tasks per assignee", "pj-assignees-title", h("div.chart", {}, canvases.assignees), assigneeTable));

    // --- drawing --------------------------------------------------------------------------------
    const colors = () => seriesColors(themeColors());

    const timelineData = (snapshots) => {
      const c = colors();
      const points = thin(snapshots);
      return {datasets: TIMELINE.map(([key, label, field]) => ({
        label, borderColor: c[key], backgroundColor: c[key], pointRadius: points.length > 60 ? 0 : 2,
        borderWidth: 2, tension: 0, data: points.map((s) => ({x: s.time_stamp * 1000, y: s[field]})),
      }))};
    };
    const statusData = (numbers) => {
      const c = colors();
      return {labels: numbers.map(([, label]) => label),
        datasets: [{data: numbers.map(([, , v]) => v || 0), backgroundColor: numbers.map(([key]) => c[key]),
          borderColor: themeColors().card}]};
    };
    const assigneeData = (rows) => {
      const c = themeColors();
      return {labels: rows.map((r) => r.assignee),
        datasets: [{label: "Tasks", data: rows.map((r) => r.task_count),
          backgroundColor: rows.map((r) => (r.assignee === "unassigned" ? c.muted : c.accent))}]};
    };

    const timelineOptions = (from, to) => ({
      parsing: true,
      interaction: {mode: "nearest", axis: "x", intersect: false},
      scales: {
        x: {type: "linear", min: from * 1000, max: to * 1000, ticks: {callback: timeTick(to - from), maxTicksLimit: 8}},
        y: {beginAtZero: true, ticks: {precision: 0}},
      },
      plugins: {tooltip: {callbacks: {title: (items) => (items.length ? fmtTime(items[0].parsed.x / 1000) : "")}}},
    });

    const draw = ({latest, assignees, snapshots, from, to}) => {
      if (header.dataset.name !== project.name) {
        fill(header, projectHeader(project, ""));
        header.dataset.name = project.name;
      }
      pauseButton.textContent = project.paused ? "Resume" : "Pause";
      fill(factsBox, facts(project));

      // status now
      const assigned = assignees ? assignees.filter((a) => a.assignee !== "unassigned").reduce((s, a) => s + a.task_count, 0) : null;
      const numbers = statusNumbers(latest, assigned, project);
      fill(statusTable, numbersTable("Tasks by status (latest snapshot)", numbers, "pj-status-table"));
      canvases.status.setAttribute("aria-label", "Task status: " +
        numbers.map(([, label, v]) => `${label} ${fmtNumber(v)}`).join(", "));

      // throughput and ETA over the range shown
      const rate = throughput(snapshots);
      const remaining = latest ? latest.new_task_count + latest.awaiting_verification_count : null;
      const eta = remaining === 0 ? "nothing left" : rate > 0 && remaining !== null ? fmtDuration(remaining / rate) : "—";
      fill(speed,
        h("dt", "Closed per second"), h("dd#pj-throughput", rate ? `${rate.toPrecision(3)} tasks/s (${fmtNumber(Math.round(rate * 3600))}/h)` : "0 tasks/s"),
        h("dt", "Remaining"), h("dd#pj-remaining", fmtNumber(remaining)),
        h("dt", "ETA"), h("dd#pj-eta", eta),
        h("dt", "Measured over"), h("dd", `${fmtTime(from)} – ${fmtTime(to)}`));

      // timeline
      const newest = snapshots[snapshots.length - 1];
      const summary = snapshots.length
        ? `${snapshots.length} snapshot${snapshots.length === 1 ? "" : "s"} from ${fmtTime(snapshots[0].time_stamp)} to ` +
          `${fmtTime(newest.time_stamp)}; newest: ` + TIMELINE.map(([, label, field]) => `${label.toLowerCase()} ${fmtNumber(newest[field])}`).join(", ") + "."
        : "No snapshots in this range.";
      timelineSummary.textContent = summary;
      canvases.timeline.setAttribute("aria-label", "Timeline of task counts: " + summary);

      // assignees
      const rows = assignees || [];
      canvases.assignees.setAttribute("aria-label", rows.length
        ? "Tasks per assignee: " + rows.map((r) => `${r.assignee} ${r.task_count}`).join(", ")
        : "Tasks per assignee: no open tasks");
      fill(assigneeTable, assignees === null ? h("p.empty", "The assignees cannot be read.") : rows.length
        ? h("table.pj-numbers-table", {}, h("caption", "Open tasks per assignee"),
          h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Assignee"), h("th.num", {scope: "col"}, "Tasks"))),
          h("tbody", {}, rows.map((r) => h("tr", {}, h("td", r.assignee), h("td.num", fmtNumber(r.task_count))))))
        : h("p.empty", "No open tasks."));

      // the charts: created once, then only their data changes
      if (!charts.length) {
        charts.push(
          makeChart(canvases.timeline, "line", timelineData(snapshots), timelineOptions(from, to)),
          makeChart(canvases.status, "doughnut", statusData(numbers), {plugins: {legend: {position: "bottom"}}}),
          makeChart(canvases.assignees, "bar", assigneeData(rows),
            {indexAxis: "y", scales: {x: {beginAtZero: true, ticks: {precision: 0}}, y: {}}, plugins: {legend: {display: false}}}));
      } else {
        const [timeline, status, bars] = charts;
        if (timeline) {
          const x = timeline.config.options.scales.x;
          x.min = from * 1000;
          x.max = to * 1000;
          x.ticks.callback = timeTick(to - from);
        }
        updateChart(timeline, timelineData(snapshots));
        updateChart(status, statusData(numbers));
        updateChart(bars, assigneeData(rows));
      }
    };

    /** update() from a button or the range picker: a failure is told, not thrown into the void. */
    const reload = () => update().catch((err) => ctx.toast("Reading the project failed: " + err.message, "error"));

    /** Re-read everything for the range chosen now, then redraw in place. */
    const update = async () => {
      const mine = ++sequence;
      const {from, to} = bounds();
      const [fresh, latest, assignees, snapshots] = await Promise.all([
        loadProject(ctx.api, id),
        optional(ctx.api.get(`/project/monitoring/${id}`, {count: 1}).then((r) => (r.content.snapshots || [])[0] || null)),
        optional(ctx.api.get(`/project/assignees/${id}`).then((r) => r.content.assignees || [])),
        ctx.api.get(`/project/monitoring-between/${id}`, {from, to})
          .then((r) => {
            rangeError.hidden = true;
            return (r.content.snapshots || []).slice().reverse(); // oldest first
          })
          .catch((err) => {
            if (!(err instanceof ApiError)) throw err;
            rangeError.textContent = err.message;
            rangeError.hidden = false;
            return [];
          }),
      ]);
      if (mine !== sequence) return;
      project = fresh;
      draw({latest, assignees, snapshots, from, to});
    };

    await update();
    return {
      refresh: update,
      dispose() {
        sequence++;
        destroyCharts(charts);
      },
    };
  },
};
