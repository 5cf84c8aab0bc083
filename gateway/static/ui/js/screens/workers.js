// Workers: closed tasks per worker (a bar chart of the top 30 and a filterable table), and for
// tracker admins a Pause / Unpause button per worker (a paused worker gets 400 on task get).
// Also exports pauseButton() and cssColor(), shared by worker.js and permissions.js.
import {fill, fmtNumber, h, table} from "../dom.js";

const TOP = 30; // bars in the chart: more are unreadable
const MAX_ROWS = 200; // table rows drawn at once; the filter narrows a big tracker down

/** A CSS variable of app.css (light or dark, whichever the system asked for). */
export function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

/** "Pause" / "Unpause" for a tracker admin: POST /worker/set_paused, then `after()` redraws. */
export function pauseButton(ctx, worker, after) {
  const paused = Boolean(worker.paused);
  const who = `${worker.alias} (#${worker.id})`;
  return h("button.acc-pause", {
    type: "button",
    "data-action": "pause",
    "aria-label": `${paused ? "Unpause" : "Pause"} worker ${who}`,
    async onclick(event) {
      event.currentTarget.disabled = true;
      try {
        await ctx.api.post("/worker/set_paused", {worker: worker.id, paused: !paused});
        ctx.toast(`Worker ${who} ${paused ? "unpaused" : "paused"}`, "ok");
      } catch (err) {
        ctx.toast(err.message, "error");
      }
      await after();
    },
  }, paused ? "Unpause" : "Pause");
}

/** Redraw `region` with `redraw()`; when a button of a row (an element with data-key) had focus,
 *  focus the button with the same data-action in the redrawn row, so keyboard users keep their
 *  place after a Pause, an Accept or a live refresh. */
export function keepFocus(region, redraw) {
  const active = document.activeElement;
  const row = active && region.contains(active) ? active.closest("[data-key]") : null;
  const key = row && row.dataset.key;
  const action = active && active.dataset ? active.dataset.action : null;
  redraw();
  if (!key) return;
  const again = [...region.querySelectorAll("[data-key]")].find((r) => r.dataset.key === key);
  // the same action, else (Accept became Revoke) the row's first button, else its link
  const target = again && (again.querySelector(`[data-action="${action}"]`) || again.querySelector("button") ||
    again.querySelector("a"));
  if (target) target.focus({preventScroll: true});
}

export function pausedBadge(paused) {
  return paused ? h("span.badge.warn", "paused") : h("span.badge.ok", "active");
}

/** Chart.js options with the theme's colours (read at creation: the theme rarely changes). */
function chartOptions() {
  const fg = cssColor("--fg");
  const line = cssColor("--line");
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    plugins: {legend: {display: false}},
    scales: {
      x: {ticks: {color: fg, autoSkip: false, maxRotation: 60}, grid: {color: line}},
      y: {beginAtZero: true, ticks: {color: fg, precision: 0}, grid: {color: line}},
    },
  };
}

function topWorkers(stats) {
  return [...stats].filter((s) => s.closed_task_count > 0)
    .sort((a, b) => b.closed_task_count - a.closed_task_count || a.id - b.id).slice(0, TOP);
}

/** The chart's text alternative: the same numbers, in words. */
function chartSummary(top) {
  if (!top.length) return "No worker has closed a task yet.";
  return `Closed tasks per worker, top ${top.length}: ` +
    top.map((s) => `${s.alias} (#${s.id}) ${s.closed_task_count}`).join("; ") + ".";
}

export default {
  title: "Workers",
  needs: null,
  async render(root, params, ctx) {
    const isAdmin = Boolean(ctx.session && ctx.session.tracker_admin);
    let stats = [];
    let drawnKey = null; // what the table shows, so a refresh with equal data leaves it (and focus) alone
    let chart = null;

    const summary = h("p#acc-workers-chart-text.acc-sr-only");
    const canvas = h("canvas", {role: "img", "aria-describedby": "acc-workers-chart-text",
      "aria-label": "Bar chart of closed tasks per worker"});
    const chartBox = h("div.chart", {}, canvas);
    const chartEmpty = h("p.empty", {hidden: true}, "No worker has closed a task yet.");
    const counts = h("p.notice", {"aria-live": "polite"});
    const filter = h("input#acc-workers-filter", {type: "search", name: "filter", placeholder: "alias or id", autocomplete: "off",
      oninput: () => drawTable(true)});
    const tableRegion = h("div#acc-workers-table");

    function drawChart() {
      const top = topWorkers(stats);
      summary.textContent = chartSummary(top);
      chartBox.hidden = !top.length; // empty axes say less than a sentence does
      chartEmpty.hidden = Boolean(top.length);
      summary.hidden = !top.length;
      if (!window.Chart) return;
      const labels = top.map((s) => `${s.alias} (#${s.id})`);
      const data = top.map((s) => s.closed_task_count);
      if (!chart) {
        chart = new window.Chart(canvas, {
          type: "bar",
          data: {labels, datasets: [{label: "Closed tasks", data, backgroundColor: cssColor("--accent")}]},
          options: chartOptions(),
        });
      } else {
        chart.data.labels = labels;
        chart.data.datasets[0].data = data;
        chart.update("none");
      }
    }

    function shownRows() {
      const q = filter.value.trim().toLowerCase();
      const rows = q ? stats.filter((s) => s.alias.toLowerCase().includes(q) || String(s.id) === q) : stats;
      return {rows: rows.slice(0, MAX_ROWS), total: rows.length};
    }

    function drawTable(force = false) {
      const {rows, total} = shownRows();
      const key = JSON.stringify([rows, total, isAdmin]);
      if (!force && key === drawnKey) return;
      drawnKey = key;
      counts.textContent = total > rows.length
        ? `Showing ${rows.length} of ${fmtNumber(total)} workers; type in the filter to narrow.`
        : `${fmtNumber(total)} worker${total === 1 ? "" : "s"}.`;
      const columns = [
        {title: "ID", class: "num", cell: (s) => String(s.id)},
        {title: "Alias", cell: (s) => h("a", {href: `#/worker/${s.id}`}, s.alias)},
        {title: "Closed tasks", class: "num", cell: (s) => fmtNumber(s.closed_task_count)},
        {title: "State", cell: (s) => pausedBadge(s.paused)},
      ];
      if (isAdmin) columns.push({title: "Actions", cell: (s) => pauseButton(ctx, s, refresh)});
      keepFocus(tableRegion, () => fill(tableRegion, table(columns, rows, {
        caption: "Workers",
        empty: filter.value ? "No worker matches the filter." : "No worker has been created yet.",
        rowAttrs: (s) => ({"data-worker-id": s.id, "data-key": s.id}),
      })));
    }

    async function refresh() {
      stats = (await ctx.api.get("/worker/stats")).content.stats || [];
      drawChart();
      drawTable();
    }

    fill(root,
      h("h1", "Workers"),
      h("section.card", {"aria-labelledby": "acc-workers-chart-h"},
        h("h2#acc-workers-chart-h", `Closed tasks per worker (top ${TOP})`),
        chartBox, chartEmpty, summary),
      h("section", {"aria-labelledby": "acc-workers-list-h"},
        h("h2#acc-workers-list-h", "All workers"),
        h("div.toolbar", {}, h("div.field", {}, h("label", {for: "acc-workers-filter"}, "Filter"),
          filter)),
        counts,
        tableRegion,
        isAdmin ? null : h("p.hint", "Only a tracker admin can pause or unpause workers.")));
    await refresh();
    return {
      refresh,
      dispose() {
        if (chart) chart.destroy();
        chart = null;
      },
    };
  },
};
