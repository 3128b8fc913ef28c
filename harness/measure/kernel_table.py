"""`harness kernel-bench`'s measurement: ns per call of the dot kernels (vec_dot, vec_dot4) of
chosen weight types and ISA variants, each beside its instruction and cache-miss counts when asked
(harness.measure.counters), and the cost of a call with no kernel in it."""
from __future__ import annotations

from dataclasses import dataclass

from harness.errors import UsageError
from harness.measure.counters import (
    CounterBatch,
    CounterResult,
    KernelSpec,
    check_spec,
    choose_backend,
    count_kernels,
)
from harness.measure.kernel_bench import prepare_dot
from harness.measure.kernel_timing import BATCHES, CallTiming, call_overhead, time_call


@dataclass(frozen=True)
class KernelBenchRow:
    """One dot kernel's figures: its time per call, and its counts per call when counted."""
    wtype: str
    isa: str
    rows: int
    n: int
    weight_bytes: int
    timing: CallTiming
    counters: CounterResult | None = None

    @property
    def kernel(self) -> str:
        return "vec_dot" if self.rows == 1 else f"vec_dot{self.rows}"

    @property
    def weight_gbps(self) -> float:
        """Weight bytes read per ns of a call (GB/s), call overhead included."""
        return self.weight_bytes / self.timing.ns_per_call if self.timing.ns_per_call else 0.0

    def record(self) -> dict:
        """The row as flat fields (json / csv); counter fields None when not counted."""
        c = self.counters
        k = c.kernel if c else None
        return {
            "type": self.wtype, "isa": self.isa, "kernel": self.kernel, "rows": self.rows, "n": self.n,
            "weight_bytes": self.weight_bytes, "ns_per_call": round(self.timing.ns_per_call, 2),
            "spread": round(self.timing.spread, 4), "batches": len(self.timing.batches_ns),
            "calls_per_batch": self.timing.calls_per_batch, "weight_gbps": round(self.weight_gbps, 3),
            "instructions": c.instructions if c else None,
            "instructions_with_call": c.with_call.instructions if c else None,
            "i1_misses": (k or c.with_call).i1_misses if c else None,
            "d1_misses": (k or c.with_call).d1_misses if c else None,
            "ll_misses": (k or c.with_call).ll_misses if c else None,
            "counter_backend": c.backend if c else None,
            "counted_calls": c.calls if c else None,
        }


@dataclass(frozen=True)
class KernelBench:
    """A kernel-bench table: its rows, the call overhead they include, and the counter measurement
    (None without counters) with the note of how its backend was chosen."""
    rows: list[KernelBenchRow]
    overhead: CallTiming
    counters: CounterBatch | None = None
    backend_note: str | None = None


def check_kernel_bench(types: list[str], isas: list[str], n: int, rows: tuple[int, ...], counters: bool = False,
                       backend: str = "cachegrind") -> list[str]:
    """The ISA variants resolved (`auto` -> the best this CPU runs; duplicates dropped), after
    checking everything asked: UsageError for an ISA this CPU cannot run, a row length that is
    not a multiple of a type's block, rows other than 1 / 4, or, with counters, a kernel the
    backend cannot count (AVX-512 under valgrind). CountersUnavailableError when nothing can count."""
    if not types or not rows or not isas:
        raise UsageError("no kernel types, ISA variants or rows to bench")
    backend = choose_backend(backend)[0] if counters else backend
    resolved = []
    for isa in isas:
        for t in types:
            for r in rows:
                resolved.append(check_spec(KernelSpec(isa, t, n, r), backend if counters else None).isa)
    return list(dict.fromkeys(resolved))


def kernel_bench(types: list[str], isas: list[str], n: int = 4096, rows: tuple[int, ...] = (1, 4),
                 batches: int = BATCHES, counters: bool = False, backend: str = "cachegrind",
                 cache_sim: bool = True) -> KernelBench:
    """Time every (type, isa, rows) dot, then count them all in one counter measurement. Everything
    the counters would refuse (AVX-512 under valgrind) is refused before anything is timed."""
    combos = [(t, isa, r) for isa in isas for t in types for r in rows]
    note = None
    if counters:
        backend, note = choose_backend(backend)
        specs = [check_spec(KernelSpec(isa, t, n, r), backend) for t, isa, r in combos]
    prepared = [prepare_dot(isa, t, n, r) for t, isa, r in combos]
    overhead = call_overhead(batches)
    timed = [(d, time_call(d, batches)) for d in prepared]
    batch = count_kernels(specs, backend=backend, cache_sim=cache_sim) if counters else None
    out = []
    for i, ((t, _, r), (d, timing)) in enumerate(zip(combos, timed)):
        out.append(KernelBenchRow(t, d.isa, r, n, d.weight_bytes, timing, batch.results[i] if batch else None))
    return KernelBench(out, overhead, batch, note)
