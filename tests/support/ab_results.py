"""A/B results (harness.measure.ab.AbResult) built from dataclasses and real per-round figures, with
the verdicts computed by harness.analysis.paired: what the report and export tests feed on, with no
measurement run."""
from __future__ import annotations

from harness.analysis.paired import family_level, judge_paired, noise_floor
from harness.measure.ab import AbResult, Policy, Workload
from harness.measure.builds import Revision

BASE = Revision("origin/main", "a" * 40, "origin/main (aaaaaaaa)")
HEAD = Revision("HEAD", "b" * 40, "HEAD (bbbbbbbb)")

# eight paired rounds per test (tokens/s; the fewest whose signed-rank interval reaches 97.5% for
# each of two tests): pp64 unchanged within noise, tg16 about 10% slower
PP_BASE = [100.0, 101.0, 99.5, 100.5, 100.2, 99.8, 100.3, 99.9]
PP_HEAD = [100.4, 101.9, 99.1, 101.6, 100.0, 100.9, 100.1, 100.6]
TG_BASE = [20.0, 20.4, 19.8, 20.1, 20.3, 19.9, 20.2, 20.0]
TG_HEAD = [18.0, 18.5, 17.7, 18.2, 18.1, 18.0, 18.3, 17.9]
# A/A: BASE against itself, two rounds
AA = {"pp64": ([100.1, 99.7], [100.6, 99.9]), "tg16": ([20.1, 19.9], [20.0, 20.2])}


def ab_result(label: str = "tiny q4_k_m", base: Revision = BASE, head: Revision = HEAD,
              threshold: float = 0.02, stop: str = "settled") -> AbResult:
    w = Workload("/cache/models/tiny-q4_k_m.gguf", label, n_prompt=64, n_gen=16, threads=2)
    policy = Policy(threshold=threshold, min_rounds=6, max_rounds=20, time_budget=300.0, aa_rounds=2, seed=0)
    level = family_level(policy.level, 2)
    verdicts = [judge_paired("pp64", label, 2, base.label, head.label, PP_BASE, PP_HEAD, threshold, level),
                judge_paired("tg16", label, 2, base.label, head.label, TG_BASE, TG_HEAD, threshold, level)]
    noise = [noise_floor(t, label, 2, *AA[t]) for t in ("pp64", "tg16")]
    return AbResult([base, head], [w], policy, verdicts, noise, rounds=8, stop=stop, seconds=184.2,
                    system={"cpu": "AMD EPYC 9R14", "cores": 2})
