// Managers: every account (id, username, registered, tracker admin). Tracker admins promote and
// demote others — never themselves (the server refuses it with 403; the button is not offered).
import {fill, fmtTime, h, table} from "../dom.js";
import {keepFocus} from "./workers.js";

export default {
  title: "Managers",
  needs: "manager",
  async render(root, params, ctx) {
    const me = ctx.session;
    const isAdmin = Boolean(me.tracker_admin);
    const region = h("div#acc-managers-table");
    let drawnKey = null;

    async function change(manager, promote) {
      const verb = promote ? "promote" : "demote";
      if (promote && !(await ctx.confirm(
        `Make ${manager.username} a tracker admin? A tracker admin passes every role check on every project, ` +
        "can pause workers and promote or demote other managers.", {confirmLabel: "Promote"}))) return;
      try {
        await ctx.api.get(`/manager/${verb}/${manager.id}`);
        ctx.toast(`${manager.username} is ${promote ? "now" : "no longer"} a tracker admin`, "ok");
      } catch (err) {
        ctx.toast(err.message, "error"); // 409: the last admin cannot be demoted
      }
      await refresh();
    }

    function actions(m) {
      if (m.id === me.id) return h("span.notice", "You cannot change your own admin flag.");
      const promote = !m.tracker_admin;
      return h("button", {
        type: "button",
        "data-action": "admin",
        "aria-label": `${promote ? "Promote" : "Demote"} ${m.username}`,
        onclick: () => change(m, promote),
      }, promote ? "Promote" : "Demote");
    }

    function draw(managers) {
      const key = JSON.stringify(managers);
      if (key === drawnKey) return; // unchanged: leave the table (and focus) alone
      drawnKey = key;
      const columns = [
        {title: "ID", class: "num", cell: (m) => String(m.id)},
        {title: "Username", cell: (m) => [m.username, m.id === me.id ? h("span.notice", " (you)") : null]},
        {title: "Registered", cell: (m) => fmtTime(m.register_time)},
        {title: "Tracker admin", cell: (m) => (m.tracker_admin ? h("span.badge.ok", "yes") : "no")},
      ];
      if (isAdmin) columns.push({title: "Actions", cell: actions});
      keepFocus(region, () => fill(region, table(columns, managers, {
        caption: "Managers",
        empty: "No managers.",
        rowAttrs: (m) => ({"data-manager-id": m.id, "data-key": m.id}),
      })));
    }

    async function refresh() {
      draw((await ctx.api.get("/manager/list")).content.managers || []);
    }

    fill(root,
      h("h1", "Managers"),
      h("p.hint", isAdmin
        ? "A tracker admin passes every role check. Promote gives that to another manager; Demote takes it away " +
          "(the tracker always keeps at least one admin)."
        : "Only a tracker admin can promote or demote managers."),
      region);
    await refresh();
    return {refresh};
  },
};
