// One FAIR instance in its own process, for the smoke test in trackers.test.ts:
// a distributed @fair/tracker over a real StateClient, following the plan in
// argv[2] (an InstancePlan as JSON). Commands come on stdin, one a line:
// `connect <url>` (it then prints a ReadyLine), and `go` (it runs the plan,
// prints a DoneLine and exits by itself, leaving nothing open). The server's
// URL comes later than the plan so the process can load while the server
// starts. Its clock is logical (the plan's times), so every instance reads
// its view at the same instant.
//
// The end-of-run handshake: after each round the process sends a marker, one
// delta on a row the tracker never uses, stamped with the round's time. The
// server applies a stream's messages in order and broadcasts what it applied
// in that order, so once a process has received instance i's marker for the
// last round, every outcome instance i reported has reached the server and
// its broadcast has reached this process.
import { createInterface } from "node:readline";
import { type BucketValue, StateClient } from "@fair/state-client";
import { Conditions } from "@fair/testing";
import { FairnessTracker } from "@fair/tracker";
import {
  type ClientView,
  type DoneLine,
  type InstancePlan,
  markerRow,
  type ReadyLine,
  roundAtMs,
  smokeTrackerConfig,
  trackerId,
  viewAtMs,
  type WindowView,
  windowMs,
} from "./tracker-plan.js";

const plan = JSON.parse(process.argv[2] ?? "") as InstancePlan;

function print(line: ReadyLine | DoneLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** One tracker and its client on a logical clock, with the markers it has seen. */
class Instance {
  nowMs = plan.startMs;
  readonly seeds = [BigInt(plan.startMs), BigInt(plan.startMs + windowMs)] as const;
  readonly errors: string[] = [];
  readonly client: StateClient;
  readonly tracker: FairnessTracker;
  /** The latest marker time seen, per seed and instance. */
  readonly #markers = new Map(this.seeds.map((seed) => [seed, new Map<number, number>()]));
  readonly #conditions = new Conditions();

  constructor(baseUrl: string) {
    const now = () => this.nowMs;
    this.client = new StateClient({ baseUrl, now, windowMs });
    this.client.on("error", (error) => this.errors.push(error.message));
    // Built before connect(), so its full-state requests go out on the first stream.
    // A fixed draw: a client is throttled exactly when its probability is at least 0.5.
    this.tracker = new FairnessTracker(smokeTrackerConfig(), {
      now,
      random: () => 0.5,
      distributed: { trackerId, link: this.client },
    });
    // Subscribed after the tracker, so the tracker has applied an update when this sees it.
    this.client.subscribe({ onStateUpdate: (seed, buckets) => this.#onUpdate(seed, buckets) });
  }

  /** Connects; resolves once both windows' initial full state has arrived. */
  async connect(): Promise<void> {
    this.client.connect();
    // The tracker asked for both windows; these calls share its requests.
    await Promise.all(this.seeds.map((seed) => this.client.requestFullState(seed)));
  }

  /** Reports `round`'s outcomes and marker; resolves when the marker has come back. */
  async round(round: number): Promise<void> {
    this.nowMs = roundAtMs(plan, round);
    for (const id of plan.failing) {
      for (let i = 0; i < plan.failuresPerRound; i++) this.tracker.reportOutcome(id, "failure");
    }
    for (const id of plan.succeeding) this.tracker.reportOutcome(id, "success");
    for (const seed of this.seeds) {
      this.client.sendDeltaUpdate(seed, [
        { rowId: markerRow, colId: plan.index, deltaProb: 0.001, lastUpdateTimeMs: this.nowMs },
      ]);
    }
    await this.markerSeen(plan.index, this.nowMs);
  }

  /** Resolves once instance `index`'s marker stamped `atMs` or later has come back in both windows. */
  markerSeen(index: number, atMs: number): Promise<void> {
    return this.#conditions.until(() =>
      this.seeds.every((seed) => (this.#markers.get(seed)?.get(index) ?? 0) >= atMs),
    );
  }

  /** What the tracker decides now for every watched id. */
  view(): WindowView {
    const clients: Record<string, ClientView> = {};
    for (const id of plan.watched) {
      const { shouldThrottle, stats } = this.tracker.registerRequest(id);
      if (stats === undefined) throw new Error("the tracker gave no stats");
      clients[id] = { ...stats, shouldThrottle };
    }
    return { seedMs: this.tracker.structureIds.main, atMs: this.nowMs, clients };
  }

  async close(): Promise<void> {
    this.tracker.close();
    await this.client.close();
  }

  #onUpdate(seed: bigint, buckets: readonly BucketValue[]): void {
    const seen = this.#markers.get(seed);
    for (const { rowId, colId, lastUpdateTimeMs } of buckets) {
      if (seen !== undefined && rowId === markerRow) {
        seen.set(colId, Math.max(seen.get(colId) ?? 0, lastUpdateTimeMs));
      }
    }
    this.#conditions.notify();
  }
}

async function run(instance: Instance): Promise<DoneLine> {
  // Paced by the server: each round starts when the previous one has made the round trip.
  for (let round = 0; round < plan.rounds; round++) await instance.round(round);
  const lastRoundMs = roundAtMs(plan, plan.rounds - 1);
  for (let index = 0; index < plan.instances; index++) {
    await instance.markerSeen(index, lastRoundMs);
  }
  instance.nowMs = viewAtMs(plan);
  const current = instance.view();
  instance.nowMs += windowMs;
  const next = instance.view();
  const { deltasDropped } = instance.client.stats();
  return {
    type: "done",
    current,
    next,
    syncStats: instance.tracker.syncStats(),
    deltasDropped: Object.values(deltasDropped).reduce((a, b) => a + b, 0),
    errors: instance.errors,
  };
}

async function main(): Promise<void> {
  const input = createInterface({ input: process.stdin });
  const commands = input[Symbol.asyncIterator]();
  const command = async () => {
    const next = await commands.next();
    return next.done === true ? "" : next.value;
  };
  const connect = await command();
  if (connect.startsWith("connect ")) {
    const instance = new Instance(connect.slice("connect ".length));
    await instance.connect();
    print({ type: "ready", view: instance.view() });
    if ((await command()) === "go") print(await run(instance));
    await instance.close();
  }
  input.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`tracker-process ${plan.index}: ${error}\n`);
  // stdin and the stream would keep the process alive; the test wants to hear it failed.
  process.exit(1);
});
