// docs/evaluation.md §2.7 criterion 3, judged on summaries: a shared-state configuration must stay
// within bounded staleness of the centralized tracker at the same N.
import type { Summary } from "./aggregate.js";

/** The bounds of §2.7.3. */
export const bounds = {
  absDivergence: 0.005,
  jain: 0.02,
  tttRatio: 1.2,
  utilizationPp: 0.5,
} as const;

/** One configuration judged against (a). */
export interface Verdict {
  readonly summary: Summary;
  readonly reference: Summary;
  readonly divergenceOk: boolean;
  readonly jainOk: boolean;
  readonly tttOk: boolean;
  readonly utilizationOk: boolean;
  readonly pass: boolean;
}

/** Judges every shared, naive and nodecay summary that has a centralized one at the same scenario and N. */
export function judge(summaries: readonly Summary[]): Verdict[] {
  const central = new Map<string, Summary>();
  for (const s of summaries) {
    if (s.first.part === "distributed" && s.first.mode === "centralized") central.set(refKey(s), s);
  }
  const verdicts: Verdict[] = [];
  for (const summary of summaries) {
    const mode = summary.first.mode;
    if (summary.first.part !== "distributed") continue;
    if (mode !== "shared" && mode !== "naive" && mode !== "nodecay") continue;
    const reference = central.get(refKey(summary));
    if (reference === undefined) continue;
    verdicts.push(verdict(summary, reference));
  }
  return verdicts;
}

/** The §2.7.3 verdict for `summary` against the centralized `reference`. */
export function verdict(summary: Summary, reference: Summary): Verdict {
  const divergenceOk =
    Math.abs(summary.divergence ?? Number.POSITIVE_INFINITY) <= bounds.absDivergence;
  const jainOk = Math.abs(summary.entitlementJain - reference.entitlementJain) <= bounds.jain;
  const tttOk =
    reference.ttt50Ms === null
      ? summary.ttt50Ms === null
      : summary.ttt50Ms !== null && summary.ttt50Ms <= bounds.tttRatio * reference.ttt50Ms;
  const utilizationOk =
    Math.abs(summary.utilization - reference.utilization) * 100 <= bounds.utilizationPp;
  return {
    summary,
    reference,
    divergenceOk,
    jainOk,
    tttOk,
    utilizationOk,
    pass: divergenceOk && jainOk && tttOk && utilizationOk,
  };
}

function refKey(s: Summary): string {
  const r = s.first;
  return [r.scenario, r.instances, r.routing, r.lambda, r.rotationMs].join("|");
}
