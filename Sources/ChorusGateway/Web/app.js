// The page's entry: login and registration, the connection banner, live events from the protocol
// client (client.js) and the forms. The list is list.js, the open conversation conversation.js.
import { ApiError, describeError } from "./api.js";
import { ChorusClient } from "./client.js";
import {
  clearTyping, closeConversation, loadOlder, markRead, onTyping, openConversation, renderHeader, renderMessages,
} from "./conversation.js";
import { $ } from "./dom.js";
import { loadConversations, renderList } from "./list.js";
import { app, learnNames, remember } from "./state.js";

const TOKEN_KEY = "chorus.token";

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
