// Hash paths → screen modules (loaded on first visit). A screen module is ./screens/<name>.js.
export const ROUTES = [
  {pattern: /^\/login(?:\?.*)?$/, load: () => import("./screens/login.js")},
  {pattern: /^\/account$/, load: () => import("./screens/account.js")},
  {pattern: /^\/projects$/, load: () => import("./screens/projects.js")},
  {pattern: /^\/project\/new$/, load: () => import("./screens/project_form.js")},
  {pattern: /^\/project\/(?<id>\d+)$/, load: () => import("./screens/dashboard.js")},
  {pattern: /^\/project\/(?<id>\d+)\/edit$/, load: () => import("./screens/project_form.js")},
  {pattern: /^\/project\/(?<id>\d+)\/permissions$/, load: () => import("./screens/permissions.js")},
  {pattern: /^\/project\/(?<id>\d+)\/secrets$/, load: () => import("./screens/secrets.js")},
  {pattern: /^\/project\/(?<id>\d+)\/tasks(?:\?.*)?$/, load: () => import("./screens/tasks.js")},
  {pattern: /^\/task\/(?<id>\d+)$/, load: () => import("./screens/task.js")},
  {pattern: /^\/workers$/, load: () => import("./screens/workers.js")},
  {pattern: /^\/worker\/(?<id>\d+)$/, load: () => import("./screens/worker.js")},
  {pattern: /^\/managers$/, load: () => import("./screens/managers.js")},
  {pattern: /^\/logs(?:\?.*)?$/, load: () => import("./screens/logs.js")},
  {pattern: /^\/console$/, load: () => import("./screens/console.js")},
];

/** The query part of the current hash ("#/logs?level=3" → URLSearchParams). */
export function hashQuery() {
  const i = location.hash.indexOf("?");
  return new URLSearchParams(i < 0 ? "" : location.hash.slice(i + 1));
}
