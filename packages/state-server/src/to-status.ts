import { Code, ConnectError } from "@connectrpc/connect";
import type { CloseReason } from "@fair/state-broadcast";
import { StoreError } from "@fair/state-store";

/**
 * The gRPC status for a refused `DeltaUpdate`: the store names the field
 * (`deltas[3].delta_prob`); the client sees it prefixed with the request
 * path it sent (`delta_update.deltas[3].delta_prob`).
 */
export function storeErrorToStatus(error: unknown): ConnectError {
  if (error instanceof StoreError) {
    return new ConnectError(
      `delta_update.${error.message}`,
      Code.InvalidArgument,
      undefined,
      undefined,
      error,
    );
  }
  // Anything else is our bug, not the client's: say so without details.
  return new ConnectError(
    "internal error applying delta_update",
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
