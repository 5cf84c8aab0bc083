// The logged-in manager: username, register date, tracker admin flag, roles per project; log out.
import {ROLES} from "../api.js";
import {fill, fmtTime, h, table} from "../dom.js";

export function roleNames(role) {
  const names = ROLES.filter((r) => role & r.bit).map((r) => r.name);
  return names.length ? names.join(", ") : "none";
}

export default {
  title: "Account",
  needs: "manager",
  async render(root, params, ctx) {
    const draw = async () => {
      const me = (await ctx.api.get("/account")).content.manager;
      const projects = (await ctx.api.get("/project/list")).content.projects || [];
      const roles = [];
      for (const p of projects) {
        const managers = (await ctx.api.get(`/manager/list_for_project/${p.id}`)).content.managers || [];
        const mine = managers.find((m) => m.manager.id === me.id);
        if (mine) roles.push({project: p, role: mine.role});
      }
      fill(root,
        h("h1", "Account"),
        h("dl.facts", {},
          h("dt", "Username"), h("dd#account-username", me.username),
          h("dt", "Manager id"), h("dd", String(me.id)),
          h("dt", "Registered"), h("dd", fmtTime(me.register_time)),
          h("dt", "Tracker admin"), h("dd#account-admin", me.tracker_admin ? "yes" : "no")),
        h("h2", "Roles"),
        table([
          {title: "Project", cell: (r) => h("a", {href: `#/project/${r.project.id}`}, r.project.name)},
          {title: "Role", cell: (r) => roleNames(r.role)},
        ], roles, {empty: me.tracker_admin ? "A tracker admin passes every role check." : "No roles on any project."}),
        h("button#logout", {
          type: "button",
          async onclick() {
            await ctx.api.get("/logout");
            await ctx.reloadSession();
            ctx.navigate("#/login");
          },
        }, "Log out"));
    };
    await draw();
    return {refresh: draw};
  },
};
