// The Chorus protocol client (PROTOCOL.md section 3), without any DOM: one WebSocket with reconnect
// (backoff with full jitter), `sync` from the last inboxSeq held (kept in `storage` across reloads),
// a send queue keyed by clientMsgId (re-sent after a reconnect: the server's dedup makes that safe),
// and messages deduplicated by (conversationId, seq). The view listens with `on(event, fn)`.
// Everything from the platform (WebSocket, timers, storage, randomness) is passed in, so
// `node --test` drives it with a fake socket.

/** Reconnect delay before attempt `attempt` (0-based): full jitter up to min(cap, base * 2^attempt). */
export function backoffDelay(attempt, random, baseMs = 500, capMs = 15000) {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20)));
}

/** Which inbox entries are held: `held` is the highest inboxSeq with every entry up to it held. */
export class InboxCursor {
  constructor(held = 0) {
    this.held = held;
    this.above = new Set(); // entries above a gap (live ones while `sync` is still filling it)
  }

  /** True if the entry was not held yet. */
  accept(inboxSeq) {
    if (!Number.isInteger(inboxSeq) || inboxSeq <= this.held || this.above.has(inboxSeq)) return false;
    this.above.add(inboxSeq);
    while (this.above.has(this.held + 1)) {
      this.above.delete(this.held + 1);
      this.held += 1;
    }
    return true;
  }

  /** A new connection syncs from `held` again: what sat above a gap comes back with it. */
  resetAbove() {
    this.above.clear();
  }
}

/** Messages of each conversation by seq (deduplicated), and each member's receipts. */
export class MessageStore {
  constructor() {
    this.byConversation = new Map(); // conversationId -> Map(seq -> message)
    this.receipts = new Map(); // conversationId -> Map(userId -> {delivered, read})
  }

  /** Adds a message; false if (conversationId, seq) is already held. */
  add(m) {
    let c = this.byConversation.get(m.conversationId);
    if (!c) this.byConversation.set(m.conversationId, (c = new Map()));
    if (c.has(m.seq)) return false;
    c.set(m.seq, m);
    return true;
  }

  /** A conversation's messages in seq order. */
  list(conversationId) {
    const c = this.byConversation.get(conversationId);
    return c ? [...c.values()].sort((a, b) => a.seq - b.seq) : [];
  }

  highestSeq(conversationId) {
    const c = this.byConversation.get(conversationId);
    return c && c.size ? Math.max(...c.keys()) : 0;
  }

  /** The lowest seq of the unbroken run that ends at the newest message held (0: none): older
   * history is asked for before it, so a gap left by live messages is filled too. */
  floorSeq(conversationId) {
    const c = this.byConversation.get(conversationId);
    let s = this.highestSeq(conversationId);
    while (s > 1 && c.has(s - 1)) s -= 1;
    return s;
  }

  /** Records a receipt (positions only rise); true if it moved one. */
  receipt(r) {
    let c = this.receipts.get(r.conversationId);
    if (!c) this.receipts.set(r.conversationId, (c = new Map()));
    const u = c.get(r.userId) ?? { delivered: 0, read: 0 };
    const before = u[r.kind] ?? 0;
    if (r.seq <= before) return false;
    u[r.kind] = r.seq;
    if (r.kind === "read" && u.delivered < r.seq) u.delivered = r.seq; // read implies held
    c.set(r.userId, u);
    return true;
  }

  /** "read", "delivered" or "sent" for my message at `seq`: every other member has read / holds it. */
  statusOf(conversationId, seq, members, me) {
    const others = members.filter((m) => m !== me);
    if (others.length === 0) return "sent";
    const c = this.receipts.get(conversationId) ?? new Map();
    const pos = (u, kind) => c.get(u)?.[kind] ?? 0;
    if (others.every((u) => pos(u, "read") >= seq)) return "read";
    if (others.every((u) => pos(u, "delivered") >= seq)) return "delivered";
    return "sent";
  }
}

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSES = new Set([4001]);

/** The client: `start()`, then `sendMessage`, `retry`, `markRead`, `typing`, `watch`; `stop()`. */
export class ChorusClient {
  /**
   * @param {object} o
   * @param {string} o.url WebSocket URL without the token (ws://host/v1/ws)
   * @param {string} o.token bearer token (sent as ?token= on the upgrade only)
   * @param {Function} o.WebSocket constructor
   * @param {object} [o.storage] getItem/setItem (sessionStorage in a browser)
   * @param {object} [o.timers] setTimeout/clearTimeout/setInterval/clearInterval
   * @param {Function} [o.random] () => [0, 1)
   * @param {Function} [o.uuid] () => a fresh clientMsgId
   * @param {Function} [o.now] () => ms
   */
  constructor(o) {
    this.url = o.url;
    this.token = o.token;
    this.WebSocket = o.WebSocket;
    this.storage = o.storage ?? null;
    this.timers = o.timers ?? globalThis;
    this.random = o.random ?? Math.random;
    this.uuid = o.uuid ?? (() => globalThis.crypto.randomUUID());
    this.now = o.now ?? (() => Date.now());
    this.maxPending = o.maxPending ?? 200;
    this.listeners = new Map();
    this.store = new MessageStore();
    this.cursor = new InboxCursor(0);
    this.pending = new Map(); // clientMsgId -> {clientMsgId, conversationId?, to?, body, status, error?}
    this.watched = new Set();
    this.presence = new Map(); // userId -> {status, lastSeen}
    this.state = "idle"; // idle, connecting, syncing, online, reconnecting, signedOut, stopped
    this.userId = null;
    this.attempt = 0;
    this.ws = null;
    this.pingTimer = null;
    this.reconnectTimer = null;
    this.receivedTimer = null;
    this.resyncTimer = null;
    this.receivedSent = 0;
    this.started = false; // a hello was seen
  }

  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
    return this;
  }

  emit(event, detail) {
    for (const fn of this.listeners.get(event) ?? []) fn(detail);
  }

  setState(s, detail = {}) {
    if (this.state === s) return;
    this.state = s;
    this.emit("state", { state: s, ...detail });
  }

  start() {
    if (this.state !== "idle" && this.state !== "stopped") return;
    this.connect();
  }

  /** Ends the client (logout): no reconnect. */
  stop() {
    this.setState("stopped");
    this.clearTimers();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try { ws.close(1000, "bye"); } catch { /* already closed */ }
    }
  }

  connect() {
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    let ws;
    try {
      ws = new this.WebSocket(`${this.url}?token=${encodeURIComponent(this.token)}`);
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => { if (this.ws === ws) this.onFrame(ev.data); };
    ws.onclose = (ev) => { if (this.ws === ws) this.onClose(ev.code, ev.reason); };
    ws.onerror = () => {}; // a close follows
  }

  onClose(code, reason) {
    this.ws = null;
    this.clearTimers();
    if (this.state === "stopped") return;
    if (FINAL_CLOSES.has(code)) {
      this.setState("signedOut", { code, reason });
      return;
    }
    this.scheduleReconnect(code);
  }

  scheduleReconnect(code) {
    const delay = backoffDelay(this.attempt, this.random);
    this.attempt += 1;
    this.setState("reconnecting", { attempt: this.attempt, inMs: delay, code });
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      if (this.state === "reconnecting") this.connect();
    }, delay);
  }

  clearTimers() {
    if (this.pingTimer !== null) this.timers.clearInterval(this.pingTimer);
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    if (this.receivedTimer !== null) this.timers.clearTimeout(this.receivedTimer);
    if (this.resyncTimer !== null) this.timers.clearTimeout(this.resyncTimer);
    this.pingTimer = this.reconnectTimer = this.receivedTimer = this.resyncTimer = null;
  }

  write(frame) {
    if (!this.ws || (this.state !== "syncing" && this.state !== "online")) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  storageKey() {
    return `chorus.inboxSeq.${this.userId}`;
  }

  onFrame(text) {
    let f;
    try {
      f = JSON.parse(text);
    } catch {
      return;
    }
    switch (f.type) {
      case "hello": return this.onHello(f);
      case "message": return this.onEntry(f);
      case "receipt": return this.onEntry(f);
      case "synced": return this.onSynced(f);
      case "ack": return this.onAck(f);
      case "error": return this.onError(f);
      case "presence":
        this.presence.set(f.userId, { status: f.status, lastSeen: f.lastSeen });
        return this.emit("presence", f);
      case "typing": return this.emit("typing", f);
      default: return; // pong, and frames of a later protocol
    }
  }

  onHello(f) {
    this.userId = f.userId;
    this.sessionId = f.sessionId;
    this.attempt = 0;
    const raw = this.storage?.getItem(this.storageKey()) ?? null;
    const known = Math.max(raw === null ? 0 : Number(raw) || 0, this.cursor.held);
    // A new tab (nothing held, nothing stored) starts at the server's present: the past is in each
    // conversation's history, not replayed from the whole inbox. So does a cursor beyond the
    // server's (another data directory). Neither claims `received` for what it skipped.
    const fresh = (raw === null && !this.started) || known > f.inboxSeq;
    const from = fresh ? f.inboxSeq : known;
    if (from !== this.cursor.held) this.cursor = new InboxCursor(from);
    if (fresh) this.receivedSent = from;
    this.started = true;
    this.cursor.resetAbove();
    this.setState("syncing", { inboxSeq: f.inboxSeq });
    const every = Math.max(1000, Math.floor((f.heartbeatMs || 30000) / 2));
    this.pingTimer = this.timers.setInterval(() => this.write({ type: "ping" }), every);
    this.write({ type: "sync", after: this.cursor.held });
    if (this.watched.size) this.write({ type: "watch", userIds: [...this.watched] });
    // What was being sent when the connection went: again, with the same clientMsgIds.
    for (const p of this.pending.values()) if (p.status === "sending") this.writeSend(p);
    this.emit("hello", f);
  }

  onEntry(f) {
    const fresh = this.cursor.accept(f.inboxSeq);
    if (f.type === "message") {
      if (this.store.add(f)) {
        if (f.from === this.userId && this.pending.has(f.clientMsgId)) this.settle(f.clientMsgId, f);
        this.emit("message", f);
      }
    } else if (this.store.receipt(f)) {
      this.emit("receipt", f);
    }
    if (fresh) this.held();
  }

  onSynced(f) {
    this.setState("online", { inboxSeq: f.inboxSeq });
    this.held();
    this.emit("synced", f);
  }

  /** Persists the cursor and tells the server what is held (delivered receipts), at most every 250 ms. */
  held() {
    this.storage?.setItem(this.storageKey(), String(this.cursor.held));
    if (this.receivedTimer !== null || this.cursor.held <= this.receivedSent) return;
    this.receivedTimer = this.timers.setTimeout(() => {
      this.receivedTimer = null;
      const upTo = this.cursor.held;
      if (upTo > this.receivedSent && this.write({ type: "received", upTo })) this.receivedSent = upTo;
    }, 250);
  }

  onAck(f) {
    this.cursor.accept(f.inboxSeq);
    const p = this.pending.get(f.clientMsgId);
    const message = {
      type: "message", inboxSeq: f.inboxSeq, conversationId: f.conversationId, seq: f.seq, messageId: f.messageId,
      from: this.userId, body: p?.body ?? "", ts: f.ts, clientMsgId: f.clientMsgId,
    };
    const fresh = this.store.add(message);
    this.settle(f.clientMsgId, message);
    if (fresh) this.emit("message", message);
    this.held();
  }

  settle(clientMsgId, message) {
    const p = this.pending.get(clientMsgId);
    if (!p) return;
    this.pending.delete(clientMsgId);
    this.emit("sent", { ...p, status: "sent", message });
  }

  onError(f) {
    const p = f.ref ? this.pending.get(f.ref) : null;
    if (p) {
      p.status = "failed";
      p.error = { code: f.code, message: f.message, retryAfterMs: f.retryAfterMs, at: this.now() };
      this.emit("sendFailed", { ...p });
      return;
    }
    // A refused `sync` (the session's frame budget spent at connect): ask again when allowed.
    if (f.code === "rate_limited" && this.state === "syncing" && this.resyncTimer === null) {
      this.resyncTimer = this.timers.setTimeout(() => {
        this.resyncTimer = null;
        if (this.state === "syncing") this.write({ type: "sync", after: this.cursor.held });
      }, f.retryAfterMs ?? 1000);
    }
    this.emit("error", f);
  }

  /** Queues a message (`conversationId` or `to`); returns its pending entry ("sending"). */
  sendMessage({ conversationId, to, body }) {
    if (this.pending.size >= this.maxPending) {
      throw new Error(`at most ${this.maxPending} messages can wait to be sent`);
    }
    const p = { clientMsgId: this.uuid(), conversationId, to, body, status: "sending" };
    this.pending.set(p.clientMsgId, p);
    this.writeSend(p);
    this.emit("pending", { ...p });
    return { ...p };
  }

  /** Sends a failed message again with its clientMsgId: the server never makes a second one. */
  retry(clientMsgId) {
    const p = this.pending.get(clientMsgId);
    if (!p || p.status !== "failed") return false;
    p.status = "sending";
    delete p.error;
    this.writeSend(p);
    this.emit("pending", { ...p });
    return true;
  }

  /** Drops a failed message the user gave up on. */
  discard(clientMsgId) {
    const p = this.pending.get(clientMsgId);
    if (!p || p.status !== "failed") return false;
    this.pending.delete(clientMsgId);
    this.emit("discarded", { ...p });
    return true;
  }

  writeSend(p) {
    const frame = { type: "send", clientMsgId: p.clientMsgId, body: p.body };
    if (p.conversationId) frame.conversationId = p.conversationId; else frame.to = p.to;
    this.write(frame);
  }

  pendingIn(conversationId) {
    return [...this.pending.values()].filter((p) => p.conversationId === conversationId);
  }

  markRead(conversationId, seq) {
    return this.write({ type: "read", conversationId, seq });
  }

  typing(conversationId) {
    return this.write({ type: "typing", conversationId });
  }

  /** Adds users to watch (kept across reconnects). */
  watch(userIds) {
    const fresh = [...new Set(userIds)].filter((u) => u && u !== this.userId && !this.watched.has(u));
    if (!fresh.length) return;
    for (const u of fresh) this.watched.add(u);
    this.write({ type: "watch", userIds: fresh });
  }
}
