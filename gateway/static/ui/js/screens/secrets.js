// A project's secrets: the project secret (handed to workers with access) and the webhook secret
// (signs git pushes), each hidden until asked for and editable; plus the webhook URL to paste into
// GitHub / Gitea / Gogs. Both routes need the SECRET role.
import {clearFieldErrors, field, fill, h, showFieldError} from "../dom.js";
import {loadProject, projectHeader} from "../project_nav.js";

/** 32 random hex digits: a webhook secret nobody has to invent. */
function randomSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** One secret's card. Modes: "hidden" (nothing fetched on screen), "shown" (read-only), "editing". */
function secretCard(ctx, {id, title, key, path, hint, short, generate}) {
  let mode = "hidden";
  let value = "";
  const body = h("div.acc-secret-body");
  const headingId = `acc-${id}-h`;
  const card = h("section.card.acc-secret", {"aria-labelledby": headingId, "data-secret": id},
    h("h2", {id: headingId}, title), h("p.hint", hint), body);

  async function fetchValue() {
    value = (await ctx.api.get(path)).content[key];
  }

  /** Run `fn`; a server error (403 without SECRET, 503…) becomes a toast and the card stays. */
  async function guarded(fn) {
    try {
      await fn();
    } catch (err) {
      ctx.toast(err.message, "error");
    }
  }

  const button = (label, action, onclick, cls = "") =>
    h(`button${cls}`, {type: "button", "data-action": action, "aria-label": `${label} ${title.toLowerCase()}`, onclick}, label);
  const show = () => guarded(async () => { await fetchValue(); mode = "shown"; draw("hide"); });
  const edit = () => guarded(async () => { await fetchValue(); mode = "editing"; draw(); });
  const hide = () => { mode = "hidden"; value = ""; draw("show"); };

  function drawEditor() {
    const input = h("textarea", {name: key, id: `acc-${id}-input`, spellcheck: "false", autocomplete: "off",
      class: short ? "acc-short" : null});
    input.value = value;
    const f = field(`New ${title.toLowerCase()}`, input, short ? "8 to 1,024 characters." : null);
    const fields = {[key]: f};
    const form = h("form.acc-secret-form", {
      async onsubmit(event) {
        event.preventDefault();
        clearFieldErrors(fields);
        try {
          await ctx.api.post(path, {[key]: input.value});
        } catch (err) {
          // the message names the field ('secret' / 'webhook_secret'); any other goes there too
          if (!showFieldError(fields, err.message)) {
            f.error.textContent = err.message;
            f.error.hidden = false;
            input.setAttribute("aria-invalid", "true");
            input.focus();
          }
          return;
        }
        ctx.toast(`${title} saved`, "ok");
        value = input.value;
        mode = "shown";
        draw("edit");
      },
    },
    f.row,
    h("div.acc-actions", {},
      h("button.primary", {type: "submit", "data-action": "save", "aria-label": `Save ${title.toLowerCase()}`}, "Save"),
      generate ? button("Generate", "generate", () => { input.value = randomSecret(); input.focus(); }) : null,
      button("Cancel", "cancel", () => { mode = "hidden"; value = ""; draw("edit"); })));
    fill(body, form);
    input.focus();
  }

  /** Redraw for the current mode; `focusAction` names the button to focus afterwards. */
  function draw(focusAction) {
    if (mode === "editing") return drawEditor();
    if (mode === "shown") {
      const box = h("textarea", {id: `acc-${id}-value`, readonly: true, spellcheck: "false",
        class: short ? "acc-short" : null});
      box.value = value;
      fill(body, h("div.field", {}, h("label", {for: box.id}, `${title} (read-only)`), box),
        h("div.acc-actions", {}, button("Hide", "hide", hide), button("Edit", "edit", edit)));
    } else {
      fill(body, h("p.notice", "Hidden. Show it only where nobody is looking over your shoulder."),
        h("div.acc-actions", {}, button("Show", "show", show), button("Edit", "edit", edit)));
    }
    const target = focusAction && body.querySelector(`[data-action="${focusAction}"]`);
    if (target) target.focus();
  }

  /** Live refresh: only a value on show is re-read, and only rewritten when it changed. */
  async function refresh() {
    if (mode !== "shown") return;
    const before = value;
    await fetchValue();
    const box = body.querySelector("textarea");
    if (box && value !== before) box.value = value;
  }

  draw();
  return {card, refresh};
}

function webhookHelp(ctx, project) {
  const url = `${location.origin}/git/receivehook`;
  const copy = navigator.clipboard ? h("button", {type: "button", "aria-label": "Copy the webhook URL",
    async onclick() {
      try {
        await navigator.clipboard.writeText(url);
        ctx.toast("Webhook URL copied", "ok");
      } catch (err) {
        ctx.toast("Copying failed: select the URL and copy it by hand", "error");
      }
    }}, "Copy") : null;
  return h("section.card", {"aria-labelledby": "acc-hook-h"},
    h("h2#acc-hook-h", "Git webhook"),
    h("p", "Each push to the repository's default branch sets this project's version to the pushed commit, " +
      "so workers see it in task.project.version."),
    h("p.acc-url", {}, h("span", "Webhook URL: "), h("code#acc-hook-url", url), " ", copy),
    h("ol.acc-steps", {},
      h("li", "In the repository's settings open Webhooks and add one (GitHub: “Add webhook”; Gitea / Gogs: " +
        "“Add webhook” → Gitea or Gogs)."),
      h("li", {}, "Payload / target URL: the webhook URL above."),
      h("li", {}, "Content type: ", h("code", "application/json"), "."),
      h("li", "Secret: the webhook secret above."),
      h("li", "Events: push events only."),
      h("li", {}, "This project's git_repo must equal the repository's full name (owner/name); it is now ",
        project.git_repo ? h("code", project.git_repo) : h("strong", "not set"), ". ",
        h("a", {href: `#/project/${project.id}/edit`}, "Edit the project"), " to change it.")));
}

export default {
  title: "Secrets",
  needs: "manager",
  async render(root, params, ctx) {
    const project = await loadProject(ctx.api, params.id);
    const pid = project.id;
    const cards = [
      secretCard(ctx, {
        id: "project-secret", title: "Project secret", key: "secret", path: `/project/secret/${pid}`,
        hint: "Free-form text (often JSON) that workers with access read from GET /project/secret/:id.",
      }),
      secretCard(ctx, {
        id: "webhook-secret", title: "Webhook secret", key: "webhook_secret", path: `/project/webhook_secret/${pid}`,
        hint: "The key of the HMAC-SHA256 signature git hosts send with each push.", short: true, generate: true,
      }),
    ];
    fill(root,
      projectHeader(project, "/secrets", "Secrets"),
      h("p.hint", "Reading and changing these needs the SECRET role on the project."),
      cards.map((c) => c.card),
      webhookHelp(ctx, project));
    return {refresh: () => Promise.all(cards.map((c) => c.refresh()))};
  },
};
