// The JSON API, as every other client speaks it: same origin, the session cookie, the envelope
// {ok, message, content}. No second API: the UI calls the routes of docs/API.md.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function request(method, path, {query, body} = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.append(k, v);
    const text = params.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  const init = {method, credentials: "same-origin", headers: {Accept: "application/json"}};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, "The tracker cannot be reached", null);
  }
  if (resp.status === 204) return {};
  let data = null;
  try {
    data = await resp.json();
  } catch (err) {
    throw new ApiError(resp.status, `HTTP ${resp.status}`, null);
  }
  if (!resp.ok || (data && data.ok === false && resp.status !== 200)) {
    let message = (data && data.message) || `HTTP ${resp.status}`;
    if (resp.status === 429 && data && data.rate_limit_delay) message += ` (retry in ${Math.ceil(data.rate_limit_delay)} s)`;
    throw new ApiError(resp.status, message, data);
  }
  return data || {};
}

export const api = {
  get: (path, query) => request("GET", path, {query}),
  post: (path, body = {}, query) => request("POST", path, {body, query}),
};

/** Role bits on a project (contract §4). */
export const ROLES = [
  {bit: 1, name: "READ"},
  {bit: 2, name: "EDIT"},
  {bit: 4, name: "MANAGE_ACCESS"},
  {bit: 8, name: "SECRET"},
  {bit: 16, name: "MAINTENANCE"},
];

/** A read the visitor may not be allowed (401/403) or that failed: null instead of failing the
 *  whole screen, which then shows "—" for what it could not read. */
export async function optional(promise) {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof ApiError) return null;
    throw err;
  }
}
