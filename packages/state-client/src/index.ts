export type {
  BucketDelta,
  BucketValue,
  FullStateRequestOptions,
  LinkStatus,
  StateLink,
  StateLinkListener,
} from "./state-link.js";
