// The conversation list: most recent activity first, unread counts, last message, presence dots.
import { openConversation } from "./conversation.js";
import { $, el } from "./dom.js";
import { activity, app, others, remember, titleOf } from "./state.js";

export async function loadConversations() {
  const { conversations } = await app.api.conversations();
  for (const c of conversations) await remember(c);
  renderList();
}

export function renderList() {
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
