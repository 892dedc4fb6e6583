// The protocol client (Sources/ChorusGateway/Web/client.js) against a fake socket and fake timers:
// `node --test Tests/web`. No packages.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ChorusClient, InboxCursor, MessageStore, backoffDelay } from "../../Sources/ChorusGateway/Web/client.js";

/** A WebSocket the test plays the server of: records what the client sent. */
class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = null;
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code, reason) { this.closed = { code, reason }; }
  // server side
  frame(f) { this.onmessage({ data: JSON.stringify(f) }); }
  drop(code = 1006) { this.onclose({ code, reason: "" }); }
  ofType(t) { return this.sent.filter((f) => f.type === t); }
}

/** Timers run only when the test says so. */
class FakeTimers {
  constructor() { this.now = 0; this.next = 1; this.pending = new Map(); }
  setTimeout(fn, ms) { const id = this.next++; this.pending.set(id, { fn, at: this.now + ms, every: 0 }); return id; }
  setInterval(fn, ms) { const id = this.next++; this.pending.set(id, { fn, at: this.now + ms, every: ms }); return id; }
  clearTimeout(id) { this.pending.delete(id); }
  clearInterval(id) { this.pending.delete(id); }
  advance(ms) {
    const until = this.now + ms;
    for (;;) {
      const due = [...this.pending.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, t] = due;
      this.now = t.at;
      if (t.every) t.at += t.every; else this.pending.delete(id);
      t.fn();
    }
    this.now = until;
  }
}

class MemoryStorage {
  constructor(init = {}) { this.map = new Map(Object.entries(init)); }
  getItem(k) { return this.map.has(k) ? this.map.get(k) : null; }
  setItem(k, v) { this.map.set(k, String(v)); }
}

function makeClient({ storage = new MemoryStorage(), random = () => 0.5 } = {}) {
  FakeSocket.all = [];
  const timers = new FakeTimers();
  let n = 0;
  const client = new ChorusClient({
    url: "ws://chat.test/v1/ws", token: "tok en", WebSocket: FakeSocket, storage, timers, random,
    uuid: () => `cm-${++n}`, now: () => timers.now,
  });
  const events = [];
  for (const e of ["state", "message", "receipt", "sent", "sendFailed", "presence", "typing", "error"]) client.on(e, (d) => events.push([e, d]));
  client.start();
  return { client, timers, storage, events, socket: () => FakeSocket.all.at(-1) };
}

const hello = (inboxSeq, userId = "u_a") => ({ type: "hello", userId, sessionId: "s1", inboxSeq, heartbeatMs: 30000 });
const msg = (inboxSeq, seq, extra = {}) => ({
  type: "message", inboxSeq, conversationId: "c1", seq, messageId: `c1:${seq}`, from: "u_b", body: `m${seq}`, ts: 1000 + seq, clientMsgId: `x${seq}`, ...extra,
});

test("the token goes on the upgrade URL only, encoded", () => {
  const { socket } = makeClient();
  assert.equal(socket().url, "ws://chat.test/v1/ws?token=tok%20en");
});

test("after hello it syncs from the inboxSeq kept in storage, then reports online", () => {
  const { client, socket, storage } = makeClient({ storage: new MemoryStorage({ "chorus.inboxSeq.u_a": "7" }) });
  socket().frame(hello(9));
  assert.deepEqual(socket().ofType("sync"), [{ type: "sync", after: 7 }]);
  assert.equal(client.state, "syncing");
  socket().frame(msg(8, 3));
  socket().frame(msg(9, 4));
  socket().frame({ type: "synced", inboxSeq: 9 });
  assert.equal(client.state, "online");
  assert.equal(storage.getItem("chorus.inboxSeq.u_a"), "9");
});

test("a stored inboxSeq beyond the server's starts over from the server's present", () => {
  const { socket } = makeClient({ storage: new MemoryStorage({ "chorus.inboxSeq.u_a": "50" }) });
  socket().frame(hello(3));
  assert.deepEqual(socket().ofType("sync"), [{ type: "sync", after: 3 }]);
});

test("a new tab starts at hello.inboxSeq, claims nothing it skipped, then keeps its cursor", () => {
  const { client, socket, timers, storage } = makeClient();
  socket().frame(hello(40));
  assert.deepEqual(socket().ofType("sync"), [{ type: "sync", after: 40 }]);
  socket().frame({ type: "synced", inboxSeq: 40 });
  timers.advance(1000);
  assert.deepEqual(socket().ofType("received"), []);
  assert.equal(storage.getItem("chorus.inboxSeq.u_a"), "40");
  socket().frame(msg(41, 9));
  timers.advance(250);
  assert.deepEqual(socket().ofType("received"), [{ type: "received", upTo: 41 }]);
  // After a drop, the same client syncs from what it holds, not from the server's present.
  socket().drop();
  timers.advance(1000);
  socket().frame(hello(45));
  assert.deepEqual(socket().ofType("sync"), [{ type: "sync", after: 41 }]);
  assert.equal(client.cursor.held, 41);
});

test("reconnect: backoff with jitter, sync from what is held, no message twice", () => {
  const { client, socket, timers, events } = makeClient();
  socket().frame(hello(0));
  socket().frame(msg(1, 1));
  socket().frame({ type: "synced", inboxSeq: 1 });
  const first = socket();
  first.drop(1006);
  assert.equal(client.state, "reconnecting");
  // attempt 0: random 0.5 * min(15000, 500) = 250 ms
  timers.advance(249);
  assert.equal(FakeSocket.all.length, 1);
  timers.advance(1);
  assert.equal(FakeSocket.all.length, 2);
  socket().frame(hello(2));
  assert.deepEqual(socket().ofType("sync"), [{ type: "sync", after: 1 }]);
  socket().frame(msg(1, 1)); // a repeat (cannot happen by contract, but must not show twice)
  socket().frame(msg(2, 2));
  socket().frame({ type: "synced", inboxSeq: 2 });
  const shown = events.filter(([e]) => e === "message").map(([, m]) => m.seq);
  assert.deepEqual(shown, [1, 2]);
  assert.deepEqual(client.store.list("c1").map((m) => m.seq), [1, 2]);
});

test("backoff grows to its cap and resets after a hello", () => {
  assert.equal(backoffDelay(0, () => 0.999), 499);
  assert.equal(backoffDelay(3, () => 0.5), 2000);
  assert.equal(backoffDelay(10, () => 0.5), 7500);
  assert.equal(backoffDelay(60, () => 1 - 1e-9), 14999);
  const { client, socket, timers } = makeClient({ random: () => 1 - 1e-9 });
  socket().drop();
  timers.advance(500);
  socket().drop();
  timers.advance(1000);
  assert.equal(client.attempt, 2);
  socket().frame(hello(0));
  assert.equal(client.attempt, 0);
});

test("4001 (token revoked) signs out and does not reconnect", () => {
  const { client, socket, timers } = makeClient();
  socket().frame(hello(0));
  socket().drop(4001);
  assert.equal(client.state, "signedOut");
  timers.advance(60000);
  assert.equal(FakeSocket.all.length, 1);
});

test("send: pending until ack, then sent; the ack's inboxSeq counts as held", () => {
  const { client, socket, timers, storage, events } = makeClient();
  socket().frame(hello(0));
  socket().frame({ type: "synced", inboxSeq: 0 });
  const p = client.sendMessage({ conversationId: "c1", body: "hi" });
  assert.equal(p.status, "sending");
  assert.deepEqual(socket().ofType("send"), [{ type: "send", clientMsgId: "cm-1", body: "hi", conversationId: "c1" }]);
  assert.equal(client.pendingIn("c1").length, 1);
  socket().frame({ type: "ack", clientMsgId: "cm-1", conversationId: "c1", seq: 1, messageId: "c1:1", ts: 5, inboxSeq: 1 });
  assert.equal(client.pendingIn("c1").length, 0);
  assert.deepEqual(events.filter(([e]) => e === "sent").map(([, d]) => d.clientMsgId), ["cm-1"]);
  assert.equal(client.store.list("c1")[0].body, "hi");
  assert.equal(client.store.list("c1")[0].from, "u_a");
  // Held up to 1 (the ack's own entry) so the next live entry moves the cursor on.
  socket().frame(msg(2, 2));
  assert.equal(storage.getItem("chorus.inboxSeq.u_a"), "2");
  timers.advance(250);
  assert.deepEqual(socket().ofType("received"), [{ type: "received", upTo: 2 }]);
});

test("to a user: the frame carries `to`", () => {
  const { client, socket } = makeClient();
  socket().frame(hello(0));
  client.sendMessage({ to: "u_b", body: "yo" });
  assert.deepEqual(socket().ofType("send"), [{ type: "send", clientMsgId: "cm-1", body: "yo", to: "u_b" }]);
});

test("a send in flight when the connection drops is sent again with the same clientMsgId", () => {
  const { client, socket, timers } = makeClient();
  socket().frame(hello(0));
  client.sendMessage({ conversationId: "c1", body: "hi" });
  socket().drop();
  client.sendMessage({ conversationId: "c1", body: "while offline" }); // queued, not written
  timers.advance(1000);
  socket().frame(hello(0));
  assert.deepEqual(socket().ofType("send").map((f) => f.clientMsgId), ["cm-1", "cm-2"]);
});

test("a send that comes back by sync before its ack settles the pending entry", () => {
  const { client, socket, events } = makeClient();
  socket().frame(hello(0));
  client.sendMessage({ conversationId: "c1", body: "hi" });
  socket().frame(msg(1, 1, { from: "u_a", clientMsgId: "cm-1", body: "hi" }));
  assert.equal(client.pendingIn("c1").length, 0);
  assert.deepEqual(events.filter(([e]) => e === "sent").map(([, d]) => d.clientMsgId), ["cm-1"]);
});

test("a refused send is failed with its code; retry reuses the clientMsgId; discard drops it", () => {
  const { client, socket, events } = makeClient();
  socket().frame(hello(0));
  client.sendMessage({ conversationId: "c1", body: "hi" });
  socket().frame({ type: "error", code: "rate_limited", message: "slow down", ref: "cm-1", retryAfterMs: 1200 });
  const failed = events.find(([e]) => e === "sendFailed")[1];
  assert.equal(failed.error.code, "rate_limited");
  assert.equal(failed.error.retryAfterMs, 1200);
  assert.equal(client.pendingIn("c1")[0].status, "failed");
  assert.equal(client.retry("cm-1"), true);
  assert.deepEqual(socket().ofType("send").map((f) => f.clientMsgId), ["cm-1", "cm-1"]);
  assert.equal(client.retry("cm-1"), false); // already sending
  socket().frame({ type: "error", code: "unavailable", message: "down", ref: "cm-1" });
  assert.equal(client.discard("cm-1"), true);
  assert.equal(client.pendingIn("c1").length, 0);
});

test("a sync refused by the rate limit is asked again when allowed", () => {
  const { client, socket, timers } = makeClient();
  socket().frame(hello(4));
  socket().frame({ type: "error", code: "rate_limited", message: "slow down", retryAfterMs: 700 });
  timers.advance(699);
  assert.equal(socket().ofType("sync").length, 1);
  timers.advance(1);
  assert.deepEqual(socket().ofType("sync"), [{ type: "sync", after: 4 }, { type: "sync", after: 4 }]);
  socket().frame({ type: "synced", inboxSeq: 4 });
  assert.equal(client.state, "online");
});

test("the send queue is bounded", () => {
  const { client } = makeClient();
  client.maxPending = 2;
  client.sendMessage({ conversationId: "c1", body: "1" });
  client.sendMessage({ conversationId: "c1", body: "2" });
  assert.throws(() => client.sendMessage({ conversationId: "c1", body: "3" }), /at most 2/);
});

test("watch is kept and sent again after a reconnect; presence is recorded", () => {
  const { client, socket, timers } = makeClient();
  socket().frame(hello(0));
  client.watch(["u_b", "u_a", "u_b"]);
  assert.deepEqual(socket().ofType("watch"), [{ type: "watch", userIds: ["u_b"] }]);
  socket().frame({ type: "presence", userId: "u_b", status: "online", lastSeen: 9 });
  assert.equal(client.presence.get("u_b").status, "online");
  socket().drop();
  timers.advance(1000);
  socket().frame(hello(0));
  assert.deepEqual(socket().ofType("watch"), [{ type: "watch", userIds: ["u_b"] }]);
});

test("pings every half heartbeat; stop closes and never reconnects", () => {
  const { client, socket, timers } = makeClient();
  socket().frame(hello(0));
  timers.advance(15000);
  assert.equal(socket().ofType("ping").length, 1);
  timers.advance(15000);
  assert.equal(socket().ofType("ping").length, 2);
  client.stop();
  assert.equal(socket().closed.code, 1000);
  timers.advance(60000);
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(socket().ofType("ping").length, 2);
});

test("garbage from the server is ignored", () => {
  const { client, socket } = makeClient();
  socket().onmessage({ data: "not json" });
  socket().frame({ type: "from-the-future" });
  assert.equal(client.state, "connecting");
});

test("InboxCursor: held moves only over an unbroken run", () => {
  const c = new InboxCursor(3);
  assert.equal(c.accept(3), false);
  assert.equal(c.accept(5), true);
  assert.equal(c.held, 3);
  assert.equal(c.accept(5), false);
  assert.equal(c.accept(4), true);
  assert.equal(c.held, 5);
  assert.equal(c.accept(1.5), false);
});

test("MessageStore: dedup by (conversationId, seq), seq order, receipts only rise", () => {
  const s = new MessageStore();
  assert.equal(s.add({ conversationId: "c1", seq: 2 }), true);
  assert.equal(s.add({ conversationId: "c1", seq: 1 }), true);
  assert.equal(s.add({ conversationId: "c1", seq: 2 }), false);
  assert.equal(s.add({ conversationId: "c2", seq: 2 }), true);
  assert.deepEqual(s.list("c1").map((m) => m.seq), [1, 2]);
  assert.equal(s.highestSeq("c9"), 0);
  assert.equal(s.floorSeq("c9"), 0);
  assert.equal(s.floorSeq("c1"), 1);
  // Live messages 9 and 10 over history 1..2: older history is asked for before 9, not before 1.
  s.add({ conversationId: "c1", seq: 10 });
  s.add({ conversationId: "c1", seq: 9 });
  assert.equal(s.floorSeq("c1"), 9);
  const members = ["me", "b", "c"];
  assert.equal(s.statusOf("c1", 2, members, "me"), "sent");
  s.receipt({ conversationId: "c1", userId: "b", kind: "delivered", seq: 2 });
  assert.equal(s.statusOf("c1", 2, members, "me"), "sent"); // c does not hold it yet
  s.receipt({ conversationId: "c1", userId: "c", kind: "read", seq: 5 });
  assert.equal(s.statusOf("c1", 2, members, "me"), "delivered");
  s.receipt({ conversationId: "c1", userId: "b", kind: "read", seq: 2 });
  assert.equal(s.statusOf("c1", 2, members, "me"), "read");
  assert.equal(s.receipt({ conversationId: "c1", userId: "b", kind: "read", seq: 1 }), false);
  assert.equal(s.statusOf("c1", 3, members, "me"), "sent"); // b holds only up to 2
});
