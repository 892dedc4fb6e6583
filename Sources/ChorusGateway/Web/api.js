// The HTTP half of the contract (PROTOCOL.md section 2): one call per endpoint, errors as ApiError
// carrying the server's stable code. `fetch` is passed in so tests can replace it.

/** An error answer: `status`, the server's `code` and `message`, `retryAfterMs` for rate_limited. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfterMs) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Human words for each error code of the contract (the server's message is kept as detail). */
export const ERROR_TEXT = {
  bad_request: "The request was not accepted",
  bad_frame: "The server could not read what was sent",
  unauthorized: "Your session has ended; please log in again",
  invalid_credentials: "Wrong username or password",
  username_taken: "That username is taken",
  unknown_user: "No such user",
  unknown_conversation: "No such conversation",
  not_member: "You are not a member of this conversation",
  group_too_large: "The group is full",
  empty_body: "A message cannot be empty",
  body_too_large: "The message is too long",
  rate_limited: "Too fast: please wait a moment",
  unavailable: "The server cannot reach that part of the cluster right now; try again",
  not_found: "Not found",
  network: "The server cannot be reached",
};

export function describeError(e) {
  const base = ERROR_TEXT[e?.code] ?? "Something went wrong";
  return e?.message && e.message !== base ? `${base} (${e.message})` : base;
}

export class Api {
  constructor({ base = "", fetch = globalThis.fetch.bind(globalThis), token = null } = {}) {
    this.base = base;
    this.fetch = fetch;
    this.token = token;
  }

  async call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json; charset=utf-8";
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let res;
    try {
      res = await this.fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, "network", String(e?.message ?? e));
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!res.ok) {
      const err = data?.error ?? {};
      const retryAfter = Number(res.headers.get("Retry-After"));
      throw new ApiError(res.status, err.code ?? `http_${res.status}`, err.message ?? res.statusText,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined);
    }
    return data;
  }

  register(username, password, email, displayName) {
    const body = { username, password, email };
    if (displayName) body.displayName = displayName;
    return this.call("POST", "/v1/users", body);
  }
  login(username, password) { return this.call("POST", "/v1/sessions", { username, password }); }
  logout() { return this.call("DELETE", "/v1/sessions/current"); }
  me() { return this.call("GET", "/v1/me"); }
  userByName(username) { return this.call("GET", `/v1/users?username=${encodeURIComponent(username)}`); }
  userById(userId) { return this.call("GET", `/v1/users?userId=${encodeURIComponent(userId)}`); }
  conversations() { return this.call("GET", "/v1/conversations"); }
  conversation(id) { return this.call("GET", `/v1/conversations/${encodeURIComponent(id)}`); }
  createConversation(members, title) {
    const body = { members };
    if (title) body.title = title;
    return this.call("POST", "/v1/conversations", body);
  }
  addMember(id, userId) { return this.call("POST", `/v1/conversations/${encodeURIComponent(id)}/members`, { userId }); }
  removeMember(id, userId) {
    return this.call("DELETE", `/v1/conversations/${encodeURIComponent(id)}/members/${encodeURIComponent(userId)}`);
  }
  /** `before`: the page of older messages; none: the newest. */
  messages(id, { before, limit = 50 } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined && before !== null) q.set("before", String(before));
    return this.call("GET", `/v1/conversations/${encodeURIComponent(id)}/messages?${q}`);
  }
}
