// cluster-key-slot (a dependency of ioredis) ships no types: the one function keys.ts uses.
declare module "cluster-key-slot" {
  /** The Redis Cluster slot (0–16383) of a key, honouring its hash tag. */
  export default function clusterKeySlot(key: string): number;
}
