// Chart.js helpers of the project screens. Chart.js (window.Chart, vendored UMD) draws on a
// canvas, so colours cannot come from CSS: they are read from app.css's variables each time a
// chart is drawn or updated, which keeps the charts readable when the system switches to dark.

/** The theme colours of app.css, as strings Chart.js accepts. */
export function themeColors() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    fg: v("--fg", "#1b1d22"),
    muted: v("--muted", "#50566a"),
    line: v("--line", "#d5d8e0"),
    card: v("--card", "#ffffff"),
    accent: v("--accent", "#1f5fbf"),
    danger: v("--danger", "#b3261e"),
    ok: v("--ok", "#1e6b34"),
    warn: v("--warn", "#8a5300"),
  };
}

/** The colour of each task count, the same on every chart and legend. */
export function seriesColors(c = themeColors()) {
  return {new: c.accent, assigned: c.muted, failed: c.danger, closed: c.ok, awaiting: c.warn};
}

/** Chart.js may be missing (a blocked or broken vendor file): the screens then show their
 *  text alternatives only, instead of failing as a whole. */
export function chartsAvailable() {
  return typeof window.Chart === "function";
}

/** Axis, legend and tooltip colours from the theme, set on a (raw) options object in place. */
function applyTheme(options, c) {
  options.color = c.fg;
  options.borderColor = c.line;
  for (const scale of Object.values(options.scales || {})) {
    scale.ticks = scale.ticks || {};
    scale.ticks.color = c.fg;
    scale.grid = scale.grid || {};
    scale.grid.color = c.line;
    if (scale.title) scale.title.color = c.fg;
  }
  options.plugins = options.plugins || {};
  options.plugins.legend = options.plugins.legend || {};
  options.plugins.legend.labels = options.plugins.legend.labels || {};
  options.plugins.legend.labels.color = c.fg;
  return options;
}

/** A chart on `canvas` (null when Chart.js is unavailable). Animations stay off: the live
 *  refresh redraws every few seconds and an animation each time only distracts and costs CPU. */
export function makeChart(canvas, type, data, options = {}) {
  if (!chartsAvailable()) return null;
  const c = themeColors();
  return new window.Chart(canvas, {
    type,
    data,
    options: applyTheme({responsive: true, maintainAspectRatio: false, animation: false, ...options}, c),
  });
}

/** Replace a chart's data in place (no new canvas, no animation), re-reading the theme.
 *  `chart.config.options` is the raw options object (chart.options is Chart.js's resolver). */
export function updateChart(chart, data) {
  if (!chart) return;
  applyTheme(chart.config.options, themeColors());
  chart.data = data;
  chart.update("none");
}

/** Destroy every chart of a screen (its dispose()). */
export function destroyCharts(charts) {
  for (const chart of charts) if (chart) chart.destroy();
  charts.length = 0;
}

/** Keep at most `max` points, evenly spaced, always keeping the first and the newest: a week of
 *  snapshots is thousands of points, more than a canvas can show. */
export function thin(points, max = 600) {
  if (points.length <= max) return points;
  const step = (points.length - 1) / (max - 1);
  const out = [];
  for (let i = 0; i < max; i++) out.push(points[Math.round(i * step)]);
  return out;
}

/** Tick label for a unix-milliseconds x value: the time, plus the date when the range spans days. */
export function timeTick(spanSeconds) {
  return (value) => {
    const d = new Date(value);
    return spanSeconds > 86400
      ? d.toLocaleDateString(undefined, {month: "short", day: "numeric"}) + " " +
        d.toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit"})
      : d.toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit", second: spanSeconds <= 3600 ? "2-digit" : undefined});
  };
}
