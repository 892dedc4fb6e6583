// One conversation: header, members, messages with their status, history paging, typing, read.
import { describeError } from "./api.js";
import { $, el, time } from "./dom.js";
import { renderList } from "./list.js";
import { app, nameOf, others, remember, titleOf } from "./state.js";

const PAGE = 50;

export async function openConversation(id) {
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
    app.hasMore.set(id, page.hasMore || app.client.store.floorSeq(id) > 1);
  } catch (e) {
    $("composer-error").textContent = describeError(e);
  }
  if (app.open !== id) return;
  renderMessages({ toBottom: true });
  markRead();
  $("message-input").focus();
}

export async function loadOlder() {
  const id = app.open;
  if (!id || app.loadingOlder || !app.hasMore.get(id)) return;
  app.loadingOlder = true;
  const scroller = $("scroller");
  const before = scroller.scrollHeight - scroller.scrollTop;
  try {
    const page = await app.api.messages(id, { before: app.client.store.floorSeq(id), limit: PAGE });
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

export function renderHeader() {
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

export function renderMessages({ toBottom = false } = {}) {
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
export function markRead() {
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

export function closeConversation() {
  app.open = null;
  $("chat").classList.remove("show-pane");
  $("conversation").hidden = true;
  $("empty").hidden = false;
  renderList();
}

export function onTyping(t) {
  if (t.conversationId !== app.open || t.userId === app.me.userId) return;
  clearTimeout(app.typingTimers.get(t.userId));
  app.typingTimers.set(t.userId, setTimeout(() => clearTyping(t.userId), 4000));
  renderTyping();
}

export function clearTyping(userId) {
  clearTimeout(app.typingTimers.get(userId));
  app.typingTimers.delete(userId);
  renderTyping();
}

function renderTyping() {
  const who = [...app.typingTimers.keys()].map(nameOf);
  $("typing").textContent = who.length === 0 ? "" : `${who.join(", ")} ${who.length === 1 ? "is" : "are"} typing…`;
}
