// The shell: session, navigation bar, hash router, live refresh and the shared dialogs.
// Screens live in ./screens/*.js (registered in ./routes.js); each exports
//   default { title, needs: "manager" | "admin" | null, render(root, params, ctx) → {refresh?, dispose?} }
// render() draws into `root`; refresh() re-reads the API and updates the screen in place (called
// by the live timer, never a full-page reload); dispose() stops what render() started.

import {api, ApiError} from "./api.js";
import {fill, h} from "./dom.js";
import {ROUTES} from "./routes.js";

const REFRESH_KEY = "tt.refresh";
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const refreshSelect = document.getElementById("refresh");

const ctx = {
  api,
  session: null, // the Manager object when logged in
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  toast,
  confirm: confirmDialog,
  async reloadSession() {
    try {
      ctx.session = (await api.get("/account")).content.manager;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      ctx.session = null;
    }
    drawNav();
  },
  refreshSeconds: () => Number(refreshSelect.value),
};

let current = null; // {screen, view, hash}
let timer = null;
let generation = 0;

function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  const note = h(`div.toast.${kind}`, {}, message);
  box.append(note);
  setTimeout(() => note.remove(), kind === "error" ? 8000 : 4000);
}

function confirmDialog(text, {confirmLabel = "Confirm"} = {}) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), {once: true});
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

function link(hash, label) {
  const here = location.hash === hash || (hash !== "#/" && location.hash.startsWith(hash + "/"));
  return h("a", {href: hash, "aria-current": here ? "page" : false}, label);
}

function drawNav() {
  const s = ctx.session;
  fill(nav,
    link("#/projects", "Projects"),
    link("#/workers", "Workers"),
    link("#/logs", "Logs"),
    link("#/console", "Console"),
    s ? link("#/managers", "Managers") : null,
    s ? link("#/account", s.username) : link("#/login", "Log in"));
}

function match(path) {
  for (const r of ROUTES) {
    const m = r.pattern.exec(path);
    if (m) return {route: r, params: m.groups || {}};
  }
  return null;
}

/** The screen a path shows (its query part is the screen's own state): tests wait for it. */
function routeName(path) {
  return path.split("?")[0];
}

function notFound(root, path) {
  fill(root, h("div.screen", {"data-route": routeName(path), "data-ready": "1"}, h("h1", "Not found"), h("p", {}, "No screen here. ", h("a", {href: "#/projects"}, "Back to the projects"))));
}

async function route() {
  const mine = ++generation;
  const path = location.hash.replace(/^#/, "") || "/projects";
  if (current && current.view && current.view.dispose) current.view.dispose();
  current = null;
  const found = match(path);
  drawNav();
  if (!found) return notFound(main, path);
  let screen;
  try {
    screen = (await found.route.load()).default;
  } catch (err) {
    fill(main, h("div.screen", {"data-route": routeName(path), "data-ready": "1"}, h("p.error", {role: "alert"}, "This screen failed to load: " + err.message)));
    return;
  }
  if (mine !== generation) return;
  if (screen.needs && !ctx.session) {
    location.replace("#/login?next=" + encodeURIComponent(path));
    return;
  }
  if (screen.needs === "admin" && !ctx.session.tracker_admin) {
    fill(main, h("div.screen", {"data-route": routeName(path), "data-ready": "1"}, h("h1", screen.title), h("p.error", "Only a tracker admin can open this screen.")));
    return;
  }
  document.title = `${screen.title} · task_tracker`;
  const root = h("div.screen", {"data-route": routeName(path)});
  fill(main, root);
  try {
    const view = (await screen.render(root, found.params, ctx)) || {};
    if (mine !== generation) {
      if (view.dispose) view.dispose();
      return;
    }
    current = {screen, view};
  } catch (err) {
    fill(root, h("h1", screen.title), h("p.error", {role: "alert"}, err.message));
    if (err instanceof ApiError && err.status === 401) {
      ctx.session = null;
      drawNav();
    }
  }
  root.dataset.ready = "1"; // drawn with its data (or its error): what tests wait for
  // A screen that put the focus somewhere (the login form's first field) keeps it; otherwise the
  // focus moves to the new screen, so a keyboard or screen-reader user starts reading there.
  if (!main.contains(document.activeElement) || document.activeElement === main) main.focus({preventScroll: true});
  schedule();
}

function schedule() {
  clearTimeout(timer);
  const seconds = ctx.refreshSeconds();
  if (!seconds) return;
  timer = setTimeout(async () => {
    const view = current && current.view;
    if (view && view.refresh && !document.hidden) {
      try {
        await view.refresh();
      } catch (err) {
        toast("Refresh failed: " + err.message, "error");
      }
    }
    schedule();
  }, seconds * 1000);
}

refreshSelect.value = localStorage.getItem(REFRESH_KEY) || "5";
if (!refreshSelect.value) refreshSelect.value = "5";
refreshSelect.addEventListener("change", () => {
  localStorage.setItem(REFRESH_KEY, refreshSelect.value);
  schedule();
});
window.addEventListener("hashchange", route);

(async () => {
  try {
    await ctx.reloadSession();
  } catch (err) {
    toast(err.message, "error");
  }
  route();
})();
