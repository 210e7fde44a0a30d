import { Code, ConnectError } from "@connectrpc/connect";
import type { CloseReason } from "@fair/state-broadcast";
import { StoreError } from "@fair/state-store";

/**
 * The gRPC status for a store's refusal of a request: the store names the
 * field (`deltas[3].delta_prob`, `buckets[3].prob`); the client sees it
 * prefixed with the request path it sent (`delta_update.deltas[3].delta_prob`,
 * `state_offer.buckets[3].prob`). A store limit
 * (`limit_exceeded`) gives `RESOURCE_EXHAUSTED`, naming the option to
 * raise. A store that is unavailable (Redis down or slow) gives
 * `UNAVAILABLE`, which clients retry after reconnecting.
 */
export function storeErrorToStatus(
  error: unknown,
  request: "delta_update" | "state_request" | "state_offer" = "delta_update",
): ConnectError {
  if (error instanceof StoreError && error.code === "unavailable") {
    return new ConnectError(
      `the shared store is unavailable (${error.message}); retry`,
      Code.Unavailable,
      undefined,
      undefined,
      error,
    );
  }
  if (error instanceof StoreError) {
    return new ConnectError(
      `${request}.${error.message}`,
      // A limit (maxSeedsPerNamespace, maxBucketsPerSeed): valid input the server will not hold.
      error.code === "limit_exceeded" ? Code.ResourceExhausted : Code.InvalidArgument,
      undefined,
      undefined,
      error,
    );
  }
  // Anything else is our bug, not the client's: say so without details.
  return new ConnectError(
    request === "state_request"
      ? "internal error answering state_request"
      : `internal error applying ${request}`,
    Code.Internal,
    undefined,
    undefined,
    error,
  );
}

/**
 * The gRPC status that ends a stream whose hub subscription was closed.
 * `undefined` when the stream itself asked for the close.
 */
export function closeReasonToStatus(reason: CloseReason): ConnectError | undefined {
  switch (reason.code) {
    case "slow_consumer":
      // RESOURCE_EXHAUSTED: the client fell behind; it reconnects and resyncs with a StateRequest.
      return new ConnectError(reason.message, Code.ResourceExhausted);
    case "stopped":
      // UNAVAILABLE is what gRPC clients retry on: the server is going away, reconnect.
      return new ConnectError("the state server is shutting down; reconnect", Code.Unavailable);
    case "unsubscribed":
      return undefined;
  }
}

/** A gRPC code as a metric label: `Code.InvalidArgument` → `invalid_argument`. */
export function codeLabel(code: Code): string {
  return Code[code].replace(/(?<!^)[A-Z]/g, (c) => `_${c}`).toLowerCase();
}
