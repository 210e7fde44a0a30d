import type { StoreEpochs } from "@fair/state-store";
import type { ServerLogger } from "./logger.js";
import type { SyncService } from "./sync-service.js";

/**
 * Follows the store's epoch while the server runs: when the store announces
 * a new one (a Redis that lost its data; docs/design.md §8), every open
 * `Sync` stream is ended with UNAVAILABLE ("state epoch changed;
 * reconnect"), since a client learns the epoch only from a new stream's
 * headers; its client reconnects, sees the new epoch and offers its view
 * back. Logs one line per change, with the old epoch and the new (a
 * warning, or information when there was none before). Returns the way to
 * stop following.
 */
export function watchEpochs(
  epochs: StoreEpochs,
  sync: SyncService,
  logger: ServerLogger,
): () => void {
  let known = epochs.current?.id;
  return epochs.onEpochChange((epoch) => {
    // The same epoch told twice is no change: nothing to reconnect for.
    if (epoch.id === known) return;
    const previous = known;
    known = epoch.id;
    const streams = sync.endEveryStream();
    const fields = { previousEpoch: previous ?? null, epoch: epoch.id, streams };
    const ended =
      "every open Sync stream ended (UNAVAILABLE) so its client reconnects and offers its view";
    // A remote store learning its first epoch is no loss; a later change is.
    if (previous === undefined) logger.info(fields, `state epoch known: ${ended}`);
    else logger.warn(fields, `state epoch changed: ${ended}`);
  });
}
