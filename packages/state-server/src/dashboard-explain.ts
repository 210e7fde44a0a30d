// The store side of the dashboard's explain view. The math — which bucket a
// client hashes to on each level, the decay, the final probability — is
// @fair/tracker's own (`explainClient`, as `fair-state explain` uses it), so
// the page, the CLI and every tracker instance agree; this module only finds
// the client's buckets in the store.
import type { StoreNamespace } from "@fair/state-store";
import { bucketKey, type StoredBucket } from "@fair/tracker";

/**
 * Reads, page by page, the buckets of `seed` among `wanted` (keys by
 * `bucketKey`). The store has no read of single buckets, so the seed is
 * scanned; only the few wanted ones are kept, and the event loop gets a turn
 * between pages.
 */
export async function readBuckets(
  namespace: StoreNamespace,
  seed: bigint,
  wanted: ReadonlySet<string>,
): Promise<Map<string, StoredBucket>> {
  const found = new Map<string, StoredBucket>();
  let cursor: string | number | undefined;
  do {
    const page = await namespace.readSeed(seed, cursor, 5_000);
    for (const bucket of page.buckets) {
      const key = bucketKey(bucket.rowId, bucket.colId);
      if (wanted.has(key)) found.set(key, bucket);
    }
    cursor = page.next;
    if (cursor !== undefined) await new Promise((resolve) => setImmediate(resolve));
  } while (cursor !== undefined && found.size < wanted.size);
  return found;
}
