// Building the page. Everything a user typed goes in as text (text nodes, textContent, attribute
// values): no innerHTML anywhere, so a stored "<img onerror=…>" is shown, never run.

/** h("button.primary#save", {onclick: f, type: "submit"}, "Save", child, [more]) → an element.
 *  Attributes starting with "on" become event listeners; `class`, `for`, `aria-*`, `data-*` and the
 *  rest are set as attributes; false/null attributes are left out; children may be strings,
 *  numbers, nodes, arrays or null. */
export function h(spec, attrs = {}, ...children) {
  const [tagAndId, ...classes] = spec.split(".");
  const [tag, id] = tagAndId.split("#");
  const el = document.createElement(tag || "div");
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(" ");
  if (attrs === null || typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = [el.className, value].filter(Boolean).join(" ");
    else if (name === "value" && "value" in el) el.value = value;
    else if (name === "checked" || name === "selected" || name === "disabled") el[name] = Boolean(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function fmtTime(unixSeconds) {
  if (!unixSeconds) return "—";
  return new Date(unixSeconds * 1000).toLocaleString();
}

export function fmtNumber(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString();
}

/** A labelled form field: returns {row, input, error}; the error slot shows the server's message
 *  for this field (aria-describedby ties it to the input). */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const error = h("p.field-error", {id: `${id}-error`, role: "alert", hidden: true});
  input.setAttribute("aria-describedby", `${id}-error`);
  const row = h("div.field", {"data-field": input.name || ""},
    input.type === "checkbox" ? h("label", {for: id}, input, " ", label) : [h("label", {for: id}, label), input],
    hint ? h("p.hint", hint) : null, error);
  return {row, input, error};
}

/** Show `message` at the field whose name the server's message quotes ("invalid field 'name': …");
 *  returns false when no field of `fields` is named, so the caller shows it elsewhere. */
export function showFieldError(fields, message) {
  for (const f of Object.values(fields)) f.error.hidden = true;
  const named = /'([A-Za-z_]+)'/.exec(message || "");
  const target = named && fields[named[1].toLowerCase()];
  if (!target) return false;
  target.error.textContent = message;
  target.error.hidden = false;
  target.input.setAttribute("aria-invalid", "true");
  target.input.focus();
  return true;
}

export function clearFieldErrors(fields) {
  for (const f of Object.values(fields)) {
    f.error.hidden = true;
    f.input.removeAttribute("aria-invalid");
  }
}

/** A table from column definitions [{title, cell: row → node|string, class?}] and rows. */
export function table(columns, rows, {caption, empty = "Nothing here yet.", rowAttrs} = {}) {
  if (!rows.length) return h("p.empty", empty);
  return h("div.table-wrap", {},
    h("table.stack", {},
      caption ? h("caption", caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {scope: "col", class: c.class}, c.title)))),
      h("tbody", {}, rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : {},
        columns.map((c) => h("td", {class: c.class, "data-label": c.title}, c.cell(row))))))));
}
