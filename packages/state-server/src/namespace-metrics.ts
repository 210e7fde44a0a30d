import { Counter, Gauge, type Registry } from "prom-client";

/** Which namespaces get a label of their own. */
export interface NamespaceLabelling {
  /** Always labelled (`metricsNamespaces`). */
  readonly always: readonly string[];
  /** How many more, the first to open a stream (`maxMetricsNamespaces`). */
  readonly max: number;
}

/** The label every namespace past the limit shares. */
export const OTHER_NAMESPACES = "__other__";

/** One namespace's series, resolved once per stream so the hot path does no label lookup. */
export interface NamespaceSeries {
  readonly streams: { inc(): void; dec(): void };
  readonly deltasReceived: { inc(count: number): void };
  readonly deltaUpdatesRejected: { inc(): void };
  readonly fullStateRequests: { inc(): void };
}

/**
 * The `fair_state_namespace_*` metrics: the server's per-stream figures by
 * namespace, with bounded cardinality. A namespace is a client-chosen
 * header, so labelling each would let one client create series without
 * end; instead the configured ones and the first `max` others seen get
 * their own label, and every later one counts under `__other__`. A
 * namespace keeps the label it was given for the life of the process.
 */
export class NamespaceMetrics {
  readonly #labelling: NamespaceLabelling;
  readonly #labels = new Map<string, string>();
  #seen = 0;
  readonly #streams: Gauge<"namespace">;
  readonly #deltasReceived: Counter<"namespace">;
  readonly #deltaUpdatesRejected: Counter<"namespace">;
  readonly #fullStateRequests: Counter<"namespace">;

  constructor(registry: Registry, labelling: NamespaceLabelling) {
    this.#labelling = labelling;
    for (const name of labelling.always) this.#labels.set(name, name);
    const registers = [registry];
    const labelNames = ["namespace"] as const;
    this.#streams = new Gauge({
      name: "fair_state_namespace_streams",
      help: "Open Sync streams by namespace (metricsNamespaces and the first maxMetricsNamespaces others; the rest under __other__).",
      labelNames,
      registers,
    });
    this.#deltasReceived = new Counter({
      name: "fair_state_namespace_deltas_received_total",
      help: "Deltas received by namespace, before validation (labelled as fair_state_namespace_streams).",
      labelNames,
      registers,
    });
    this.#deltaUpdatesRejected = new Counter({
      name: "fair_state_namespace_delta_updates_rejected_total",
      help: "DeltaUpdate messages rejected by namespace (labelled as fair_state_namespace_streams).",
      labelNames,
      registers,
    });
    this.#fullStateRequests = new Counter({
      name: "fair_state_namespace_full_state_requests_total",
      help: "StateRequests served by namespace (labelled as fair_state_namespace_streams).",
      labelNames,
      registers,
    });
  }

  /** The label `namespace` counts under. */
  label(namespace: string): string {
    const known = this.#labels.get(namespace);
    if (known !== undefined) return known;
    if (this.#seen >= this.#labelling.max) return OTHER_NAMESPACES;
    this.#seen++;
    this.#labels.set(namespace, namespace);
    return namespace;
  }

  /** `namespace`'s series. */
  series(namespace: string): NamespaceSeries {
    const label = this.label(namespace);
    return {
      streams: this.#streams.labels(label),
      deltasReceived: this.#deltasReceived.labels(label),
      deltaUpdatesRejected: this.#deltaUpdatesRejected.labels(label),
      fullStateRequests: this.#fullStateRequests.labels(label),
    };
  }
}
