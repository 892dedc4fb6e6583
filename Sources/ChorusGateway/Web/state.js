// What the page knows: the signed-in user, names, conversations, the open one, the protocol
// client. Shared by the view modules.
import { Api } from "./api.js";

export const app = {
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

export function nameOf(userId) {
  if (userId === app.me?.userId) return "You";
  return app.names.get(userId) ?? userId;
}

export async function learnNames(userIds) {
  const unknown = [...new Set(userIds)].filter((u) => u && !app.names.has(u));
  await Promise.all(unknown.map(async (u) => {
    try {
      const user = await app.api.userById(u);
      app.names.set(u, user.displayName || user.username);
    } catch { /* left as the id */ }
  }));
}

export function others(c) {
  return c.members.filter((m) => m !== app.me.userId);
}

export function titleOf(c) {
  if (c.kind === "direct") return nameOf(others(c)[0] ?? app.me.userId);
  return c.title || others(c).map(nameOf).join(", ") || "Group";
}

export function activity(c) {
  return c.lastMessage?.ts ?? 0;
}

export async function remember(c) {
  app.conversations.set(c.conversationId, c);
  await learnNames(c.members);
  if (c.kind === "direct") app.client?.watch(others(c));
}
