"""Deterministic counters of the hot kernels: instructions per call of vec_dot, per weight type, on
the avx2 variant and rows of 4096 values, counted under valgrind's cachegrind in the engine's own C
functions (harness.measure.counters). asv tracks the figure (unit "instructions"): the same build
gives the same count, so a change of a single instruction per call is a real change, not noise.

All the types are counted in one measurement (setup_cache: a child Python under valgrind, K + 1 runs
of ~5 s each, two at a time). Skipped (n/a) without valgrind, on a CPU without AVX2, and at commits
that have no harness.measure.counters. The count misses what decode is bound by (DRAM bandwidth,
frequency, contention): keep the time_ benchmarks beside it."""
from __future__ import annotations

from harness import native

try:
    from harness.measure import counters
except ImportError:                        # commits before the counters
    counters = None

# append, never reorder (asv identifies parameters by repr); a handful keeps an asv run quick
COUNTER_TYPES = ["q8_0", "q4_0", "q4_k", "q6_k", "bf16"]
COUNTER_ISA = "avx2"                       # valgrind cannot run AVX-512; scalar counts the reference code
COUNTER_N = 4096


def count_vec_dots() -> dict[str, float] | str:
    """Instructions per vec_dot call per type, or the reason they cannot be counted here."""
    if counters is None:
        return "no harness.measure.counters in this commit"
    if counters.valgrind_path() is None:
        return "valgrind is not installed"
    if COUNTER_ISA not in native.cpu_features()["supported"]:
        return f"this CPU or build cannot run the {COUNTER_ISA} variant"
    specs = [counters.KernelSpec(COUNTER_ISA, t, COUNTER_N, 1) for t in COUNTER_TYPES]
    batch = counters.count_kernels(specs, backend="cachegrind", cache_sim=False)
    return {r.spec.wtype: r.instructions for r in batch.results}


class VecDotInstructions:
    params = (COUNTER_TYPES,)
    param_names = ["type"]
    unit = "instructions"

    def setup_cache(self):
        return count_vec_dots()
    setup_cache.timeout = 600

    def setup(self, counts, wtype):
        if isinstance(counts, str):             # asv skips a combination whose setup raises NotImplementedError
            raise NotImplementedError(counts)

    def track_instructions_vec_dot(self, counts, wtype):
        return counts[wtype]
