// The view: screens, lists and forms over the protocol client (client.js) and the HTTP API (api.js).
// Every name and message body is put in the page as text (textContent), never as HTML.
import { Api, ApiError, describeError } from "./api.js";
import { ChorusClient } from "./client.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "chorus.token";
const PAGE = 50;

/** An element with properties and children; strings become text nodes. */
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(typeof c === "string" ? document.createTextNode(c) : c);
  return e;
}

const app = {
  api: new Api(),
  client: null,
  me: null,
  names: new Map(), // userId -> display name
  conversations: new Map(), // conversationId -> conversation (PROTOCOL.md shape)
  open: null, // conversationId shown
  hasMore: new Map(), // conversationId -> older messages exist
  loadingOlder: false,
  readSent: new Map(), // conversationId -> seq last marked read
  typingTimers: new Map(), // userId -> timer clearing "is typing"
  typingSentAt: 0,
  rateLimitTimer: null,
};

// ---- auth ----

function showAuth(message = "") {
  $("chat").hidden = true;
  $("auth").hidden = false;
  selectTab(false);
  $("auth-error").textContent = message;
  $("login-username").focus();
}

function selectTab(register) {
  $("tab-login").setAttribute("aria-selected", String(!register));
  $("tab-register").setAttribute("aria-selected", String(register));
  $("login-form").hidden = register;
  $("register-form").hidden = !register;
  $("auth-error").textContent = "";
}

async function login(username, password) {
  const session = await app.api.login(username, password);
  sessionStorage.setItem(TOKEN_KEY, session.token);
  await enterChat(session.token);
}

function authError(e) {
  if (e instanceof ApiError && e.code === "rate_limited" && e.retryAfterMs) {
    return `${describeError(e)}: try again in ${Math.ceil(e.retryAfterMs / 1000)} s`;
  }
  return describeError(e);
}

async function signOut(message) {
  app.client?.stop();
  app.client = null;
  sessionStorage.removeItem(TOKEN_KEY);
  app.api.token = null;
  app.conversations.clear();
  app.open = null;
  setBanner(null);
  showAuth(message);
}

// ---- connection banner ----

function setBanner(text, kind = "") {
  const b = $("banner");
  b.hidden = !text;
  b.textContent = text ?? "";
  b.className = kind;
}

function onState({ state, inMs, attempt }) {
  switch (state) {
    case "connecting": return setBanner("Connecting…");
    case "syncing": return setBanner("Catching up…");
    case "online":
      setBanner("Connected", "online");
      setTimeout(() => { if (app.client?.state === "online") setBanner(null); }, 1500);
      return;
    case "reconnecting":
      setBanner(inMs === undefined ? "Reconnecting…" : `Connection lost. Reconnecting in ${Math.ceil(inMs / 1000)} s (attempt ${attempt})…`);
      // A token that stopped working cannot reconnect: find out over HTTP and say so.
      if (attempt >= 3) app.api.me().catch((e) => { if (e.code === "unauthorized") signOut(describeError(e)); });
      return;
    case "signedOut": return signOut("Your session was ended (logged out elsewhere or revoked). Please log in again.");
    default: return;
  }
}

// ---- names and conversations ----

function nameOf(userId) {
  if (userId === app.me?.userId) return "You";
  return app.names.get(userId) ?? userId;
}

async function learnNames(userIds) {
  const unknown = [...new Set(userIds)].filter((u) => u && !app.names.has(u));
  await Promise.all(unknown.map(async (u) => {
    try {
      const user = await app.api.userById(u);
      app.names.set(u, user.displayName || user.username);
    } catch { /* left as the id */ }
  }));
}

function others(c) {
  return c.members.filter((m) => m !== app.me.userId);
}

function titleOf(c) {
  if (c.kind === "direct") return nameOf(others(c)[0] ?? app.me.userId);
  return c.title || others(c).map(nameOf).join(", ") || "Group";
}

function activity(c) {
  return c.lastMessage?.ts ?? 0;
}

async function remember(c) {
  app.conversations.set(c.conversationId, c);
  await learnNames(c.members);
  if (c.kind === "direct") app.client?.watch(others(c));
}

async function loadConversations() {
  const { conversations } = await app.api.conversations();
  for (const c of conversations) await remember(c);
  renderList();
}

function renderList() {
  const list = $("conversation-list");
  const sorted = [...app.conversations.values()].sort((a, b) => activity(b) - activity(a) || a.conversationId.localeCompare(b.conversationId));
  list.replaceChildren(...sorted.map((c) => {
    const last = c.lastMessage;
    const preview = last ? `${last.from === app.me.userId ? "You: " : ""}${last.body}` : "No messages yet";
    const presence = c.kind === "direct" ? app.client?.presence.get(others(c)[0]) : null;
    const unread = c.conversationId === app.open && document.visibilityState === "visible" ? 0 : c.unread;
    const label = `${titleOf(c)}${unread ? `, ${unread} unread` : ""}`;
    return el("li", { class: "conv" },
      el("button", { type: "button", "aria-current": String(c.conversationId === app.open), "aria-label": label, "data-id": c.conversationId,
        onclick: () => openConversation(c.conversationId) },
        el("span", { class: `dot ${presence?.status === "online" ? "online" : ""}`, hidden: c.kind !== "direct", "aria-hidden": "true" }),
        el("span", { class: "title", text: titleOf(c) }),
        unread ? el("span", { class: "badge", text: String(unread) }) : el("span"),
        el("span", { class: "preview", text: preview })));
  }));
}

// ---- one conversation ----

async function openConversation(id) {
  app.open = id;
  $("chat").classList.add("show-pane");
  $("empty").hidden = true;
  $("conversation").hidden = false;
  $("composer-error").textContent = "";
  $("typing").textContent = "";
  $("members-panel").hidden = true;
  $("members-toggle").setAttribute("aria-expanded", "false");
  renderHeader();
  renderList();
  renderMessages({ toBottom: true });
  try {
    const page = await app.api.messages(id, { limit: PAGE });
    for (const m of page.messages) app.client.store.add(m);
    app.hasMore.set(id, page.hasMore || floorSeq(id) > 1);
  } catch (e) {
    $("composer-error").textContent = describeError(e);
  }
  if (app.open !== id) return;
  renderMessages({ toBottom: true });
  markRead();
  $("message-input").focus();
}

/** The lowest seq of the unbroken run that ends at the newest message held. */
function floorSeq(id) {
  const store = app.client.store;
  let s = store.highestSeq(id);
  const held = store.byConversation.get(id);
  if (!held) return 0;
  while (s > 1 && held.has(s - 1)) s -= 1;
  return s;
}

async function loadOlder() {
  const id = app.open;
  if (!id || app.loadingOlder || !app.hasMore.get(id)) return;
  app.loadingOlder = true;
  const scroller = $("scroller");
  const before = scroller.scrollHeight - scroller.scrollTop;
  try {
    const page = await app.api.messages(id, { before: floorSeq(id), limit: PAGE });
    for (const m of page.messages) app.client.store.add(m);
    app.hasMore.set(id, page.hasMore);
    if (app.open === id) {
      renderMessages();
      scroller.scrollTop = scroller.scrollHeight - before; // keep what was on screen in place
    }
  } catch (e) {
    $("composer-error").textContent = describeError(e);
  } finally {
    app.loadingOlder = false;
  }
}

function renderHeader() {
  const c = app.conversations.get(app.open);
  if (!c) return;
  $("conv-title").textContent = titleOf(c);
  const dot = $("conv-dot");
  if (c.kind === "direct") {
    const p = app.client?.presence.get(others(c)[0]);
    dot.hidden = false;
    dot.className = `dot ${p?.status === "online" ? "online" : ""}`;
    $("conv-sub").textContent = p?.status === "online" ? "online" : p ? `offline${p.lastSeen ? `, last seen ${time(p.lastSeen)}` : ""}` : "";
    $("members-toggle").hidden = true;
  } else {
    dot.hidden = true;
    $("conv-sub").textContent = `${c.members.length} members`;
    $("members-toggle").hidden = false;
    renderMembers(c);
  }
}

function renderMembers(c) {
  $("member-list").replaceChildren(...c.members.map((u) => el("li", {},
    el("span", { text: nameOf(u) }),
    el("button", { type: "button", class: "secondary", onclick: () => removeMember(c.conversationId, u),
      "aria-label": u === app.me.userId ? "Leave the group" : `Remove ${nameOf(u)}` }, u === app.me.userId ? "Leave" : "Remove"))));
}

function time(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function renderMessages({ toBottom = false } = {}) {
  const id = app.open;
  const c = app.conversations.get(id);
  if (!id || !c || !app.client) return;
  const scroller = $("scroller");
  const atBottom = toBottom || scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  const store = app.client.store;
  const items = store.list(id).map((m) => {
    const mine = m.from === app.me.userId;
    const status = mine ? store.statusOf(id, m.seq, c.members, app.me.userId) : null;
    return el("li", { class: `msg ${mine ? "mine" : "theirs"}`, "data-seq": m.seq, "data-client-msg-id": m.clientMsgId },
      el("div", { class: "from", text: nameOf(m.from) }),
      el("p", { class: "body", text: m.body }),
      el("div", { class: "meta" }, el("time", { datetime: new Date(m.ts).toISOString(), text: time(m.ts) }),
        status ? el("span", { class: `status ${status}`, text: status }) : null));
  });
  for (const p of app.client.pendingIn(id)) {
    const failed = p.status === "failed";
    const why = failed ? failureText(p.error) : "";
    items.push(el("li", { class: `msg mine pending ${failed ? "failed" : ""}`, "data-client-msg-id": p.clientMsgId },
      el("div", { class: "from", text: "You" }),
      el("p", { class: "body", text: p.body }),
      el("div", { class: "meta" },
        el("span", { class: `status ${p.status}`, text: failed ? `not sent: ${why}` : "sending" }),
        failed ? el("button", { type: "button", onclick: () => { app.client.retry(p.clientMsgId); renderMessages(); } }, "Retry") : null,
        failed ? el("button", { type: "button", class: "secondary", onclick: () => { app.client.discard(p.clientMsgId); renderMessages(); } }, "Discard") : null)));
  }
  $("messages").replaceChildren(...items);
  $("load-older").hidden = !app.hasMore.get(id);
  if (atBottom) scroller.scrollTop = scroller.scrollHeight;
}

function failureText(error) {
  if (!error) return "";
  if (error.code === "rate_limited" && error.retryAfterMs) {
    const left = Math.max(0, Math.ceil((error.at + error.retryAfterMs - Date.now()) / 1000));
    return left > 0 ? `${describeError(error)}; you can send again in ${left} s` : `${describeError(error)}; you can send again now`;
  }
  return describeError(error);
}

/** Tells the others what I have read: the newest message of the open conversation, while visible. */
function markRead() {
  const id = app.open;
  if (!id || document.visibilityState !== "visible" || !app.client) return;
  const top = app.client.store.highestSeq(id);
  const c = app.conversations.get(id);
  if (c) c.unread = 0;
  if (top > (app.readSent.get(id) ?? 0) && app.client.markRead(id, top)) app.readSent.set(id, top);
  renderList();
}

async function removeMember(id, userId) {
  try {
    const c = await app.api.removeMember(id, userId);
    if (userId === app.me.userId) {
      app.conversations.delete(id);
      closeConversation();
    } else {
      await remember(c);
      renderHeader();
    }
    renderList();
  } catch (e) {
    $("composer-error").textContent = describeError(e);
  }
}

function closeConversation() {
  app.open = null;
  $("chat").classList.remove("show-pane");
  $("conversation").hidden = true;
  $("empty").hidden = false;
  renderList();
}

// ---- live events ----

async function onMessage(m) {
  let c = app.conversations.get(m.conversationId);
  if (!c) {
    try { c = await app.api.conversation(m.conversationId); } catch { return; }
    await remember(c);
  }
  if (m.seq > c.lastSeq || !c.lastMessage) {
    c.lastSeq = Math.max(c.lastSeq, m.seq);
    if (!c.lastMessage || m.seq >= c.lastMessage.seq) c.lastMessage = m;
    if (m.from !== app.me.userId && !(m.conversationId === app.open && document.visibilityState === "visible")) c.unread = (c.unread ?? 0) + 1;
  }
  await learnNames([m.from]);
  if (m.conversationId === app.open) {
    clearTyping(m.from);
    renderMessages();
    markRead();
  }
  renderList();
}

function onTyping(t) {
  if (t.conversationId !== app.open || t.userId === app.me.userId) return;
  clearTimeout(app.typingTimers.get(t.userId));
  app.typingTimers.set(t.userId, setTimeout(() => clearTyping(t.userId), 4000));
  renderTyping();
}

function clearTyping(userId) {
  clearTimeout(app.typingTimers.get(userId));
  app.typingTimers.delete(userId);
  renderTyping();
}

function renderTyping() {
  const who = [...app.typingTimers.keys()].map(nameOf);
  $("typing").textContent = who.length === 0 ? "" : `${who.join(", ")} ${who.length === 1 ? "is" : "are"} typing…`;
}

function onSendFailed(p) {
  if (p.conversationId === app.open) {
    renderMessages();
    if (p.error?.code === "rate_limited") {
      clearInterval(app.rateLimitTimer);
      app.rateLimitTimer = setInterval(() => {
        renderMessages();
        if (Date.now() > p.error.at + (p.error.retryAfterMs ?? 0)) clearInterval(app.rateLimitTimer);
      }, 1000);
    }
  }
}

// ---- entering the chat ----

async function enterChat(token) {
  app.api.token = token;
  app.me = await app.api.me();
  app.names.set(app.me.userId, app.me.displayName || app.me.username);
  $("me").textContent = `${app.me.displayName || app.me.username} (@${app.me.username})`;
  $("auth").hidden = true;
  $("chat").hidden = false;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const client = new ChorusClient({ url: `${scheme}//${location.host}/v1/ws`, token, WebSocket, storage: sessionStorage });
  app.client = client;
  client.on("state", onState)
    .on("hello", () => loadConversations().catch(() => {}))
    .on("message", (m) => onMessage(m))
    .on("receipt", (r) => { if (r.conversationId === app.open) renderMessages(); })
    .on("typing", onTyping)
    .on("presence", () => { renderList(); renderHeader(); })
    .on("pending", (p) => { if (p.conversationId === app.open) renderMessages({ toBottom: true }); })
    .on("sent", (p) => { if (p.conversationId === app.open) renderMessages(); })
    .on("discarded", (p) => { if (p.conversationId === app.open) renderMessages(); })
    .on("sendFailed", onSendFailed)
    // Refusals of typing, read or ping frames (rate_limited without a ref) are not the user's business.
    .on("error", (f) => { if (f.code !== "rate_limited") $("composer-error").textContent = describeError(f); });
  await loadConversations();
  client.start();
}

function sendFromComposer() {
  const input = $("message-input");
  const body = input.value;
  if (!app.open || !body.trim()) return;
  $("composer-error").textContent = "";
  try {
    app.client.sendMessage({ conversationId: app.open, body });
    input.value = "";
  } catch (e) {
    $("composer-error").textContent = String(e.message ?? e);
  }
}

async function resolveUsernames(text) {
  const names = text.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  const users = [];
  for (const n of names) {
    try {
      users.push(await app.api.userByName(n));
    } catch (e) {
      throw new ApiError(e.status, e.code, e.code === "unknown_user" ? `no user named "${n}"` : e.message);
    }
  }
  for (const u of users) app.names.set(u.userId, u.displayName || u.username);
  return users.map((u) => u.userId);
}

/** A sidebar form that creates (or finds) a conversation and opens it; errors show under the forms. */
function sidebarForm(id, create) {
  $(id).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("sidebar-error").textContent = "";
    try {
      const c = await create();
      await remember(c);
      $(id).reset();
      renderList();
      await openConversation(c.conversationId);
    } catch (e) {
      $("sidebar-error").textContent = describeError(e);
    }
  });
}

function wire() {
  $("tab-login").addEventListener("click", () => selectTab(false));
  $("tab-register").addEventListener("click", () => selectTab(true));
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("auth-error").textContent = "";
    try { await login($("login-username").value.trim(), $("login-password").value); } catch (e) { $("auth-error").textContent = authError(e); }
  });
  $("register-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("auth-error").textContent = "";
    const username = $("register-username").value.trim();
    const password = $("register-password").value;
    try {
      await app.api.register(username, password, $("register-email").value.trim(), $("register-display").value.trim());
      await login(username, password);
    } catch (e) {
      $("auth-error").textContent = authError(e);
    }
  });
  $("logout").addEventListener("click", async () => {
    try { await app.api.logout(); } catch { /* the token is dropped either way */ }
    signOut("You are logged out.");
  });
  sidebarForm("new-direct", async () => {
    const [id] = await resolveUsernames($("direct-username").value);
    return app.api.createConversation([id]);
  });
  sidebarForm("new-group", async () => {
    const ids = await resolveUsernames($("group-members").value);
    // Two or more others make a group; one other would be the pair's direct conversation.
    if (ids.length < 2) throw new ApiError(400, "bad_request", "a group needs at least two other members");
    const c = await app.api.createConversation(ids, $("group-title").value.trim());
    $("new-group-box").open = false;
    return c;
  });
  $("add-member").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const [id] = await resolveUsernames($("add-member-username").value);
      const c = await app.api.addMember(app.open, id);
      await remember(c);
      $("add-member-username").value = "";
      renderHeader();
    } catch (e) {
      $("composer-error").textContent = describeError(e);
    }
  });
  $("members-toggle").addEventListener("click", () => {
    const open = $("members-panel").hidden;
    $("members-panel").hidden = !open;
    $("members-toggle").setAttribute("aria-expanded", String(open));
  });
  $("back").addEventListener("click", closeConversation);
  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); sendFromComposer(); });
  $("message-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); sendFromComposer(); }
  });
  $("message-input").addEventListener("input", () => {
    if (!app.open || Date.now() - app.typingSentAt < 3000) return;
    app.typingSentAt = Date.now();
    app.client?.typing(app.open);
  });
  $("load-older").addEventListener("click", loadOlder);
  $("scroller").addEventListener("scroll", () => { if ($("scroller").scrollTop < 40) loadOlder(); });
  document.addEventListener("visibilitychange", markRead);
}

async function boot() {
  wire();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showAuth();
  try {
    await enterChat(token);
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    showAuth(e.code === "unauthorized" ? "Your session has ended; please log in again." : describeError(e));
  }
}

boot();
