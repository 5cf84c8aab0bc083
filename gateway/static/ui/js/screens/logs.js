// The logs (#/logs?level=4&mode=atleast&since=day&q=timeout): POST /logs answers the entries of
// exactly one level (contract §6.6), so "at least" asks every level from FATAL down to the chosen
// one at once and merges them. Scope, worker and text are filtered here, from each entry's `data`.
// Newest first, 100 a page; the filters live in the hash query so a view can be bookmarked.
import {ApiError} from "../api.js";
import {fill, fmtTime, h, table} from "../dom.js";
import {hashQuery} from "../routes.js";

export const LEVELS = {1: "FATAL", 2: "PANIC", 3: "ERROR", 4: "WARN", 5: "INFO", 6: "DEBUG", 7: "TRACE"};
const PER_PAGE = 100;
const PER_LEVEL_LIMIT = 10000; // what /logs answers at most per level
const SINCE = {hour: ["last hour", 3600], day: ["last day", 86400], week: ["last week", 7 * 86400], custom: ["custom", 0]};
const DEFAULTS = {level: "5", mode: "atleast", since: "day", from: "", scope: "", worker: "", q: "", page: "1"};

/** The filters from the hash query, malformed values replaced by the defaults. */
function filtersFromHash() {
  const q = hashQuery();
  const f = {...DEFAULTS};
  for (const key of Object.keys(DEFAULTS)) if (q.has(key)) f[key] = q.get(key);
  if (!LEVELS[f.level]) f.level = DEFAULTS.level;
  if (f.mode !== "exactly") f.mode = "atleast";
  if (!SINCE[f.since]) f.since = DEFAULTS.since;
  if (!/^\d+$/.test(f.from)) f.from = "";
  if (!/^\d+$/.test(f.worker)) f.worker = "";
  if (!/^[1-9]\d*$/.test(f.page)) f.page = "1";
  return f;
}

function hashFor(f) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(f)) if (value !== "" && value !== DEFAULTS[key]) query.set(key, value);
  const text = query.toString();
  return "#/logs" + (text ? "?" + text : "");
}

/** The unix second the query starts after. */
function sinceSeconds(f) {
  if (f.since === "custom") return Math.max(1, Number(f.from) || 1);
  return Math.max(1, Math.floor(Date.now() / 1000) - SINCE[f.since][1]);
}

/** `data` is JSON text ({"scope", "worker"} for worker logs); anything else gives no scope/worker. */
function parseData(text) {
  try {
    const data = JSON.parse(text);
    if (data && typeof data === "object" && !Array.isArray(data)) {
      return {scope: typeof data.scope === "string" ? data.scope : "",
        worker: Number.isSafeInteger(data.worker) && data.worker > 0 ? data.worker : null};
    }
  } catch (err) {
    // not JSON: shown without scope or worker
  }
  return {scope: "", worker: null};
}

/** unix seconds ↔ the value of an <input type=datetime-local> (local time, minutes). */
function toLocalInput(unix) {
  if (!unix) return "";
  const d = new Date(unix * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(value) {
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? String(Math.floor(ms / 1000)) : "";
}

const BADGE = {1: "bad", 2: "bad", 3: "bad", 4: "warn"};

export default {
  title: "Logs",
  needs: null,
  async render(root, params, ctx) {
    let filters = filtersFromHash();
    let entries = []; // merged and sorted, newest first, before the browser-side filters
    let truncated = false;
    let loadSeq = 0;

    // --- filters ---------------------------------------------------------------------------------
    const inputs = {
      level: h("select", {id: "logs-level", name: "level"},
        Object.entries(LEVELS).map(([n, name]) => h("option", {value: n}, name))),
      mode: h("select", {id: "logs-mode", name: "mode"},
        h("option", {value: "atleast"}, "at least"), h("option", {value: "exactly"}, "exactly")),
      since: h("select", {id: "logs-since", name: "since"},
        Object.entries(SINCE).map(([key, [label]]) => h("option", {value: key}, label))),
      from: h("input", {id: "logs-from", name: "from", type: "datetime-local"}),
      scope: h("input", {id: "logs-scope", name: "scope", type: "search", autocomplete: "off"}),
      worker: h("input", {id: "logs-worker", name: "worker", type: "number", min: "1", inputmode: "numeric"}),
      q: h("input", {id: "logs-q", name: "q", type: "search", autocomplete: "off"}),
    };
    const labels = {level: "Level", mode: "Mode", since: "Since", from: "From (custom)", scope: "Scope contains",
      worker: "Worker id", q: "Message contains"};
    const rows = Object.fromEntries(Object.entries(inputs).map(([key, input]) =>
      [key, h("div.field", {}, h("label", {for: input.id}, labels[key]), input)]));
    const showCustom = () => { rows.from.hidden = inputs.since.value !== "custom"; };
    inputs.since.addEventListener("change", showCustom);
    const setInputs = () => {
      for (const key of ["level", "mode", "since", "scope", "worker", "q"]) inputs[key].value = filters[key];
      inputs.from.value = toLocalInput(Number(filters.from));
      showCustom();
    };
    setInputs();
    const filterError = h("p.error", {role: "alert", hidden: true});
    const form = h("form.card.log-filters", {
      "aria-label": "Filter logs",
      onsubmit(event) {
        event.preventDefault();
        filterError.hidden = true;
        const next = {page: "1"};
        for (const key of ["level", "mode", "since", "scope", "worker", "q"]) next[key] = inputs[key].value.trim();
        next.from = next.since === "custom" ? fromLocalInput(inputs.from.value) : "";
        if (next.since === "custom" && !next.from) {
          filterError.textContent = "Choose the date and time the logs start from.";
          filterError.hidden = false;
          inputs.from.focus();
          return;
        }
        if (next.worker && !/^\d+$/.test(next.worker)) {
          filterError.textContent = "The worker is a worker id (a whole number ≥ 1).";
          filterError.hidden = false;
          return;
        }
        filters = next;
        remember();
        load();
      },
    },
    h("div.tk-filter-row", {}, Object.values(rows)),
    h("div.tk-filter-actions", {}, h("button.primary", {type: "submit"}, "Apply")),
    filterError);

    /** The hash follows the filters and page without a hashchange (no re-render). */
    function remember() {
      history.replaceState(history.state, "", hashFor(filters));
    }

    // --- the entries -----------------------------------------------------------------------------
    const status = h("p.notice", {"aria-live": "polite"});
    const results = h("div.log-rows");
    const prevButton = h("button", {type: "button", onclick() { turn(-1); }}, "Previous");
    const nextButton = h("button", {type: "button", onclick() { turn(1); }}, "Next");
    const pageLabel = h("span.tk-page-label");
    const pager = h("nav.tk-pager", {"aria-label": "Pages"}, prevButton, pageLabel, nextButton);

    function turn(step) {
      filters = {...filters, page: String(Number(filters.page) + step)};
      remember();
      draw();
      results.scrollIntoView({block: "start"});
    }

    function shown() {
      const scope = filters.scope.toLowerCase();
      const text = filters.q.toLowerCase();
      const worker = filters.worker ? Number(filters.worker) : null;
      return entries.filter((e) => (!scope || e.scope.toLowerCase().includes(scope))
        && (worker === null || e.worker === worker)
        && (!text || e.message.toLowerCase().includes(text)));
    }

    const COLUMNS = [
      {title: "Level", class: "nowrap", cell: (e) => h("span.badge", {class: BADGE[e.level] || false}, LEVELS[e.level] || String(e.level))},
      {title: "Time", class: "nowrap", cell: (e) => h("time", {datetime: new Date(e.timestamp * 1000).toISOString()}, fmtTime(e.timestamp))},
      {title: "Scope", cell: (e) => e.scope || "—"},
      {title: "Worker", class: "nowrap", cell: (e) => e.worker ? h("a", {href: `#/worker/${e.worker}`}, String(e.worker)) : "—"},
      {title: "Message", class: "log-message", cell: (e) => e.message},
    ];

    let drawn = null; // the page shown now: a refresh that changes nothing leaves it alone

    function draw(onlyIfChanged = false) {
      const matching = shown();
      const pages = Math.max(1, Math.ceil(matching.length / PER_PAGE));
      const page = Math.min(Number(filters.page), pages);
      if (String(page) !== filters.page) {
        filters = {...filters, page: String(page)};
        remember();
      }
      const slice = matching.slice((page - 1) * PER_PAGE, page * PER_PAGE);
      const levelName = LEVELS[filters.level];
      const said = `${matching.length.toLocaleString()} ${matching.length === 1 ? "entry" : "entries"}`
        + ` ${filters.mode === "exactly" ? `at level ${levelName}` : `at level ${levelName} or more severe`},`
        + ` ${filters.since === "custom" ? `since ${fmtTime(Number(filters.from))}` : SINCE[filters.since][0]}, newest first.`
        + (truncated ? ` Only the newest ${PER_LEVEL_LIMIT.toLocaleString()} of a level are kept: narrow the time range to see more.` : "");
      if (status.textContent !== said) status.textContent = said;
      const signature = JSON.stringify([page, slice]);
      if (!(onlyIfChanged && signature === drawn)) {
        drawn = signature;
        fill(results, table(COLUMNS, slice, {caption: "Log entries", empty: "No log entry matches the filters."}));
      }
      pageLabel.textContent = `Page ${page} of ${pages}`;
      prevButton.disabled = page <= 1;
      nextButton.disabled = page >= pages;
    }

    /** Ask /logs for each level the filter covers, in parallel, and merge them newest first. */
    async function load(quiet = false) {
      const mine = ++loadSeq;
      const top = Number(filters.level);
      const levels = filters.mode === "exactly" ? [top] : Array.from({length: top}, (_, i) => i + 1);
      const since = sinceSeconds(filters);
      if (!quiet) status.textContent = "Loading…";
      let answers;
      try {
        answers = await Promise.all(levels.map((level) => ctx.api.post("/logs", {level, since})));
      } catch (err) {
        if (mine !== loadSeq) return;
        if (err instanceof ApiError && err.status === 401) {
          entries = [];
          drawn = null;
          status.textContent = "";
          fill(results, h("p.notice", {}, "Log in to read the logs: this tracker keeps them private. ",
            h("a", {href: "#/login?next=" + encodeURIComponent("/logs")}, "Log in")));
          pageLabel.textContent = "";
          prevButton.disabled = nextButton.disabled = true;
          return;
        }
        if (quiet) throw err;
        status.textContent = "";
        filterError.textContent = err.message;
        filterError.hidden = false;
        return;
      }
      if (mine !== loadSeq) return;
      truncated = false;
      const merged = [];
      answers.forEach((answer, i) => {
        const logs = (answer.content && answer.content.logs) || [];
        if (logs.length >= PER_LEVEL_LIMIT) truncated = true;
        logs.forEach((entry, n) => merged.push({
          level: entry.level ?? levels[i], timestamp: entry.timestamp, message: String(entry.message ?? ""),
          ...parseData(entry.data), n,
        }));
      });
      // Newest first; within a second, the more severe first, then the later-stored first.
      merged.sort((a, b) => b.timestamp - a.timestamp || a.level - b.level || b.n - a.n);
      entries = merged;
      draw(quiet);
    }

    fill(root, h("h1", "Logs"), form, status, results, pager);
    await load();
    return {refresh: () => load(true)};
  },
};
