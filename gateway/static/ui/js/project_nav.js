// The header every project screen shares: the project's name and links to its screens.
import {h} from "./dom.js";

const TABS = [
  ["", "Dashboard"],
  ["/tasks", "Tasks"],
  ["/edit", "Edit"],
  ["/permissions", "Permissions"],
  ["/secrets", "Secrets"],
];

/** `active` is one of "", "/tasks", "/edit", "/permissions", "/secrets". */
export function projectHeader(project, active, title) {
  return [
    h("p.crumbs", {}, h("a", {href: "#/projects"}, "Projects"), " / ",
      h("a", {href: `#/project/${project.id}`}, project.name)),
    h("h1", title ? `${title}: ${project.name}` : project.name),
    h("nav.subnav", {"aria-label": "Project"}, TABS.map(([suffix, label]) =>
      h("a", {href: `#/project/${project.id}${suffix}`, "aria-current": suffix === active ? "page" : false}, label))),
  ];
}

/** The project, or throws the API's error (404 unknown, 401/403 not allowed) for the shell to show. */
export async function loadProject(api, id) {
  return (await api.get(`/project/get/${id}`)).content.project;
}
