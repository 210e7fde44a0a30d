// What the leak tests measure: the heap after a forced garbage collection,
// the process's live handles by kind, and a bounded wait for the server's
// own bookkeeping (which it updates on socket events the test cannot see)
// to settle.
import {
  subscribe as subscribeChannel,
  unsubscribe as unsubscribeChannel,
} from "node:diagnostics_channel";
import type { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { TestServer } from "./harness.js";

let gc: (() => void) | undefined;

/**
 * V8's `gc()`. Vitest starts its workers without `--expose-gc`, so the flag
 * is set at run time and the function taken from a fresh context, as Jest's
 * leak detector does; only the test files that call this get it.
 */
export function forceGc(): void {
  if (gc === undefined) {
    gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) {
      setFlagsFromString("--expose-gc");
      gc = runInNewContext("gc") as () => void;
      setFlagsFromString("--no-expose-gc");
    }
  }
  gc();
}

/**
 * Bytes held after full collections: the JS heap plus ArrayBuffer storage
 * (Buffers, typed arrays), which lives outside it. Collects a few times,
 * yielding in between, so objects freed by weak callbacks and by handles
 * that finished closing are gone too.
 */
export async function heldBytes(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    forceGc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/** The process's live handles and requests (sockets, servers, timers, …), counted by kind. */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/**
 * Resolves once `condition()` holds, re-checked every few milliseconds;
 * rejects naming `what` (and the last `describe()`) after `timeoutMs`. For
 * server-side bookkeeping that no event announces: a stream's cleanup after
 * the client reset it runs when the server reads the RST_STREAM, a little
 * after the client's side has closed.
 */
export async function settled(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  describe: () => unknown = () => "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not settled within ${timeoutMs} ms (${JSON.stringify(describe())})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Weak references to what the server builds per connection (its HTTP/2
 * session) and per stream (its hub subscription, sampled): once every client
 * is gone and the heap collected, none may still be alive. Sessions are
 * caught through the `net.server.socket` diagnostics channel, which names the
 * listener a connection arrived at, from the second connection on.
 */
export function watchCollection(server: TestServer, sampleEvery = 1) {
  const port = Number(server.running.grpcAddress.split(":").pop());
  const sessions: WeakRef<object>[] = [];
  let listener: EventEmitter | undefined;
  const onSession = (session: object) => sessions.push(new WeakRef(session));
  const onSocket = (message: unknown) => {
    const { socket } = message as { socket: Socket & { server?: EventEmitter } };
    if (listener === undefined && socket.localPort === port && socket.server) {
      listener = socket.server;
      listener.on("session", onSession);
    }
  };
  subscribeChannel("net.server.socket", onSocket);
  const hub = server.running.server.hub;
  const subscribe = hub.subscribe;
  const subscriptions: WeakRef<object>[] = [];
  let seen = 0;
  hub.subscribe = (...args) => {
    const subscription = subscribe.apply(hub, args);
    if (seen++ % sampleEvery === 0) subscriptions.push(new WeakRef(subscription));
    return subscription;
  };
  return {
    /**
     * Stops watching; after a full collection, says how many were watched and
     * how many of them are still reachable, and lets go of the references.
     */
    async stop() {
      unsubscribeChannel("net.server.socket", onSocket);
      listener?.off("session", onSession);
      hub.subscribe = subscribe;
      await heldBytes();
      const count = (refs: WeakRef<object>[]) => refs.filter((ref) => ref.deref()).length;
      const result = {
        sessions: { watched: sessions.length, alive: count(sessions) },
        subscriptions: { watched: subscriptions.length, alive: count(subscriptions) },
      };
      sessions.length = 0;
      subscriptions.length = 0;
      return result;
    },
  };
}
