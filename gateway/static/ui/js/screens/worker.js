// One worker: id, alias, created, paused and its closed task count; admins pause / unpause it.
import {fill, fmtNumber, fmtTime, h} from "../dom.js";
import {pauseButton, pausedBadge} from "./workers.js";

export default {
  title: "Worker",
  needs: null,
  async render(root, params, ctx) {
    const isAdmin = Boolean(ctx.session && ctx.session.tracker_admin);
    const heading = h("h1");
    const facts = h("dl#acc-worker-facts.facts");
    const actions = h("div.toolbar");
    let drawnKey = null;

    async function refresh() {
      // /worker/stats is the only place that exposes closed_task_count
      const [worker, stats] = await Promise.all([
        ctx.api.get(`/worker/get/${params.id}`).then((r) => r.content.worker),
        ctx.api.get("/worker/stats").then((r) => r.content.stats || []),
      ]);
      const stat = stats.find((s) => s.id === worker.id);
      const key = JSON.stringify([worker, stat && stat.closed_task_count]);
      if (key === drawnKey) return; // unchanged: keep the button (and its focus)
      drawnKey = key;
      document.title = `Worker ${worker.alias} · task_tracker`;
      heading.textContent = `Worker ${worker.alias}`;
      fill(facts,
        h("dt", "ID"), h("dd", String(worker.id)),
        h("dt", "Alias"), h("dd", worker.alias),
        h("dt", "Created"), h("dd", fmtTime(worker.created)),
        h("dt", "State"), h("dd", pausedBadge(worker.paused)),
        h("dt", "Closed tasks"), h("dd", stat ? fmtNumber(stat.closed_task_count) : "—"));
      const hadFocus = actions.contains(document.activeElement);
      fill(actions, isAdmin ? pauseButton(ctx, worker, refresh) : null);
      if (hadFocus && actions.firstElementChild) actions.firstElementChild.focus(); // keep the keyboard user's place
    }

    fill(root,
      h("p.crumbs", {}, h("a", {href: "#/workers"}, "Workers"), " / ", `#${params.id}`),
      heading, facts, actions,
      isAdmin ? null : h("p.hint", "Only a tracker admin can pause or unpause a worker."));
    await refresh();
    return {refresh};
  },
};
