// Log in / register (two tabs, one form each). After either, the session cookie is set by the
// gateway (HttpOnly: the page never sees it) and we go where the visitor was going.
import {clearFieldErrors, field, fill, h, showFieldError} from "../dom.js";
import {hashQuery} from "../routes.js";

export default {
  title: "Log in",
  needs: null,
  render(root, params, ctx) {
    const next = hashQuery().get("next") || "/projects";
    let tab = "login";
    const draw = () => {
      const fields = {
        username: field("Username", h("input", {name: "username", autocomplete: "username", required: true})),
        password: field("Password", h("input", {name: "password", type: "password", required: true,
          autocomplete: tab === "login" ? "current-password" : "new-password"}),
        tab === "register" ? "8 to 128 characters; not a common password." : null),
      };
      const status = h("p.error", {role: "alert", hidden: true});
      const form = h("form.card", {
        "aria-labelledby": "auth-title",
        async onsubmit(event) {
          event.preventDefault();
          clearFieldErrors(fields);
          status.hidden = true;
          const body = {username: fields.username.input.value, password: fields.password.input.value};
          try {
            await ctx.api.post(tab === "login" ? "/login" : "/register", body);
            await ctx.reloadSession();
            ctx.navigate("#" + (next.startsWith("/") && !next.startsWith("/login") ? next : "/projects"));
          } catch (err) {
            if (!showFieldError(fields, err.message)) {
              status.textContent = err.message;
              status.hidden = false;
            }
          }
        },
      },
      h("h1#auth-title", tab === "login" ? "Log in" : "Register"),
      fields.username.row, fields.password.row, status,
      h("button.primary", {type: "submit"}, tab === "login" ? "Log in" : "Register"));
      const tabButton = (name, label) => h("button.tab", {
        type: "button", role: "tab", id: `tab-${name}`, "aria-selected": String(tab === name),
        onclick() { tab = name; draw(); },
      }, label);
      fill(root,
        ctx.session ? h("p.notice", {}, `You are logged in as ${ctx.session.username}. `,
          h("a", {href: "#/account"}, "Your account")) : null,
        h("div.tabs", {role: "tablist", "aria-label": "Log in or register"},
          tabButton("login", "Log in"), tabButton("register", "Register")),
        form);
      fields.username.input.focus();
    };
    draw();
    return {};
  },
};
