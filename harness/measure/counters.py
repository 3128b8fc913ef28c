"""Deterministic counters for the kernels: instructions (and cachegrind's simulated I1 / D1 / LL
cache misses) per call of a prepared kernel, so that a 1% change in a kernel shows with no noise,
where a timing on a shared machine moves by several percent from run to run.

How: a small child Python process (harness.measure.counter_child) prepares the kernels and calls
each in a plain loop, under `valgrind --tool=cachegrind` (or `perf stat -e instructions:u` where
this machine's perf can count). Python's start-up, numpy's import and the kernels' preparation
cost hundreds of millions of instructions, so one run means nothing; two runs that differ only in
how many times one kernel is called do: (count(N2) - count(N1)) / (N2 - N1) is the cost of one
call, the start-up cancelling out. Several kernels share one measurement: a base run calls every
kernel N1 times, and run j calls kernel j N2 times and the others N1 times (K kernels, K + 1 runs).
Under cachegrind each figure is given twice: `kernel`, the instructions (and misses) spent in the
engine's own C functions (the functions of native/ sources, by the debug info), which is exact and
repeatable to the instruction; and `with_call`, the whole process's difference, which adds the
Python loop and the cffi call (~4,700 instructions) and moves a little between measurements, as
the child's start-up is not bit-for-bit repeatable (6,758.5 and 6,762.3 per call of a Q8_0 avx2
vec_dot of 3200 values, 0.06%, where the kernel's own count was 2,021 both times). perf gives only
the second.

Cost: a run under cachegrind takes about 4 s (cache simulation off) to 7 s (on) on this project's
Zen 4 VM, nearly all of it the child's start-up (~550 million instructions, most of them importing
numpy); the loops are kept to ~16 million values per kernel. Runs go two at a time.

What this misses:
- Memory-bound decode. Token generation streams every weight from DRAM once per token; its speed is
  set by DRAM bandwidth and latency, the clock frequency, and contention with other cores and
  processes, none of which an instruction count sees. A kernel can lose instructions and not get
  faster in decode, or keep them and get slower. Time decode with `harness bench` / `harness ab`.
- The cache misses are simulated: cachegrind models two levels (I1 / D1, and LL for the last level)
  of a fixed geometry (CacheModel, Zen-4-like by default: 32 KiB 8-way L1s, 32 MiB 16-way LL), with
  no prefetcher, no second-level cache, no other cores and no other processes: a model to compare
  kernels with, not this machine's real hierarchy.
- AVX-512: valgrind cannot run AVX-512 instructions (its x86 decoder stops at AVX2), so the avx512
  variant is refused under cachegrind (on a CPU with AVX-512, valgrind's CPUID hides it and the
  engine's `auto` picks avx2 inside valgrind). Count avx2 and scalar; the avx512 kernels need perf on
  a machine with hardware counters.
- Instructions are not time: the same count can run at different speeds (latency chains, port
  pressure, frequency licences of wide vectors), so keep timing kernels (`harness kernel-bench`)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness import native
from harness.errors import HarnessError, UsageError
from harness.ggml_types import BLOCK_GEOMETRY, GGMLType
from harness.measure.cachegrind_out import CachegrindProfile, read_cachegrind
from harness.measure.perf_counters import parse_perf_count, perf_command, perf_unavailable_reason

BACKENDS = ("cachegrind", "perf", "auto")
VALGRIND_NO_AVX512 = ("valgrind cannot run AVX-512 instructions (its x86 decoder stops at AVX2): "
                      "count the avx2 or scalar variant under cachegrind (the avx512 kernels need perf "
                      "on a machine with hardware counters)")
WARMUP_CALLS = 16                # every run calls every kernel at least this often (the base run's N1)
VALUES_PER_KERNEL = 16 * 2**20   # the extra calls of a kernel cover about this many values (N2 - N1)
MIN_CALLS, MAX_CALLS = 8, 4000
SCALAR_CALLS_DIVISOR = 8         # the scalar variant spends ~10x the instructions of avx2 per value
PERF_CALLS_SCALE = 50            # perf runs the child natively, ~50x faster than cachegrind
RUN_TIMEOUT_S = 600
# the engine's own C sources (a checkout's native/, an installed package's harness/_csrc/)
ENGINE_FILE = re.compile(r"(^|/)(native|_csrc)/(src|include)/")


class CountersUnavailableError(HarnessError):
    """Neither valgrind nor a perf that can count is on this machine (or the one asked for is not)."""


class CounterRunError(HarnessError):
    """A counting run failed: the child process (or valgrind / perf) exited with an error."""


@dataclass(frozen=True)
class KernelSpec:
    """One kernel to count: a dot (rows 1: vec_dot, 4: vec_dot4) or the prefill panel (weight_rows
    by tokens), of one weight type and ISA variant, on rows of n values."""
    isa: str
    wtype: str
    n: int = 4096
    rows: int = 1
    kind: str = "dot"
    weight_rows: int = 16
    tokens: int = 32

    @property
    def label(self) -> str:
        what = (f"vec_dot{'' if self.rows == 1 else self.rows}" if self.kind == "dot"
                else f"panel {self.weight_rows}x{self.tokens}")
        return f"{self.wtype} {what} {self.isa} n={self.n}"

    @property
    def values_per_call(self) -> int:
        """Weight values times activation rows one call multiplies (the loop length's yardstick)."""
        return self.n * (self.rows if self.kind == "dot" else self.weight_rows * self.tokens)

    def plan_entry(self) -> dict:
        return {"kind": self.kind, "isa": self.isa, "type": self.wtype, "n": self.n, "rows": self.rows,
                "weight_rows": self.weight_rows, "tokens": self.tokens}


@dataclass(frozen=True)
class CacheModel:
    """The cache geometry cachegrind simulates, (bytes, ways, line bytes) per level, fixed so that
    miss counts do not depend on the machine valgrind runs on (Zen-4-like by default)."""
    i1: tuple[int, int, int] = (32768, 8, 64)
    d1: tuple[int, int, int] = (32768, 8, 64)
    ll: tuple[int, int, int] = (32 * 2**20, 16, 64)

    def valgrind_args(self) -> list[str]:
        return [f"--{name}={','.join(map(str, g))}" for name, g in (("I1", self.i1), ("D1", self.d1),
                                                                     ("LL", self.ll))]


@dataclass(frozen=True)
class Counts:
    """Counts per call (misses None where the backend did not simulate caches). I1: instruction
    cache read misses; D1: first-level data read + write misses; LL: last-level misses of both."""
    instructions: float
    i1_misses: float | None = None
    d1_misses: float | None = None
    ll_misses: float | None = None


@dataclass(frozen=True)
class CounterResult:
    """The counts of one kernel per call: `kernel` in the engine's C functions only (cachegrind;
    None under perf), `with_call` the whole process's difference, with the Python loop and the
    cffi call around the kernel; `calls` is N2 - N1."""
    spec: KernelSpec
    backend: str
    calls: int
    kernel: Counts | None
    with_call: Counts

    @property
    def instructions(self) -> float:
        """Instructions per call of the kernel itself where the backend tells them apart, else with the call."""
        return (self.kernel or self.with_call).instructions

    def as_dict(self) -> dict:
        return {"spec": asdict(self.spec), "backend": self.backend, "calls": self.calls,
                "kernel": asdict(self.kernel) if self.kernel else None, "with_call": asdict(self.with_call)}


@dataclass(frozen=True)
class CounterBatch:
    """One measurement of several kernels: their results, the runs it took, its wall time, and the
    instructions of the base run (the child's start-up and preparation, which the differences cancel)."""
    results: list[CounterResult]
    backend: str
    runs: int
    seconds: float
    run_seconds: tuple[float, ...]
    base_instructions: int


@dataclass(frozen=True)
class _RunCounts:
    """What one run counted: the whole process, and the engine's functions (cachegrind only), per event."""
    whole: dict[str, int]
    engine: dict[str, int] | None
    seconds: float


# ----------------------------------------------------------------------------
# what can count here

def valgrind_path() -> str | None:
    return shutil.which("valgrind")


def choose_backend(backend: str = "cachegrind") -> tuple[str, str | None]:
    """(the backend to use, a note to show or None). `auto`: perf where it can count, else
    cachegrind (the note says why perf could not); an unusable choice: CountersUnavailableError."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown counter backend {backend!r} (choose from {', '.join(BACKENDS)})")
    no_valgrind = "valgrind is not installed (apt-get install valgrind)"
    if backend == "cachegrind":
        if valgrind_path() is None:
            raise CountersUnavailableError(f"cannot count instructions: {no_valgrind}")
        return backend, None
    why_not_perf = perf_unavailable_reason()
    if backend == "perf":
        if why_not_perf:
            raise CountersUnavailableError(f"cannot count with perf: {why_not_perf}; use the cachegrind backend")
        return backend, None
    if why_not_perf is None:
        return "perf", None
    if valgrind_path() is None:
        raise CountersUnavailableError(f"cannot count instructions: {why_not_perf}, and {no_valgrind}")
    return "cachegrind", f"perf counters are not available: {why_not_perf}; counting under cachegrind"


def check_spec(spec: KernelSpec, backend: str | None = None) -> KernelSpec:
    """The spec with its ISA resolved (`auto` -> the best variant this CPU runs); UsageError for
    a kernel the backend cannot count (AVX-512 under valgrind), a bad shape or unknown type
    (backend None: the shape and type only)."""
    isa = native.resolve_isa(spec.isa)
    if backend == "cachegrind" and isa == "avx512":
        via = " (`auto` is avx512 on this CPU)" if spec.isa == "auto" else ""
        raise UsageError(f"{VALGRIND_NO_AVX512}{via}")
    if spec.kind not in ("dot", "panel"):
        raise UsageError(f"kernel kind must be dot or panel, got {spec.kind!r}")
    if spec.kind == "dot" and spec.rows not in (1, 4):
        raise UsageError(f"rows must be 1 (vec_dot) or 4 (vec_dot4), got {spec.rows}")
    try:
        wt = GGMLType[spec.wtype.upper()]
    except KeyError:
        raise UsageError(f"unknown weight type {spec.wtype!r}") from None
    at = GGMLType(native.lib.q35_act_type(int(wt)))
    for t in (wt, at):
        if spec.n <= 0 or spec.n % BLOCK_GEOMETRY[t][0]:
            raise UsageError(f"n must be a positive multiple of {BLOCK_GEOMETRY[t][0]} for {t.name}, got {spec.n}")
    return replace(spec, isa=isa)


def extra_calls(spec: KernelSpec, backend: str) -> int:
    """N2 - N1 for one kernel: enough calls to cover VALUES_PER_KERNEL values, within bounds."""
    values = VALUES_PER_KERNEL // (SCALAR_CALLS_DIVISOR if spec.isa == "scalar" else 1)
    calls = max(MIN_CALLS, min(MAX_CALLS, values // spec.values_per_call))
    return calls * (PERF_CALLS_SCALE if backend == "perf" else 1)


# ----------------------------------------------------------------------------
# one run of the child

def child_env() -> dict[str, str]:
    """The child's environment: this harness first on the path; string hashing and numpy's BLAS
    threads fixed (an idle BLAS thread pool spins for a varying number of instructions)."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.update(PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def child_argv(plan_file: Path) -> list[str]:
    return [sys.executable, "-m", "harness.measure.counter_child", str(plan_file)]


def is_engine(fl: str, fn: str) -> bool:
    """Whether a (file, function) of a cachegrind profile is the engine's own code."""
    return bool(ENGINE_FILE.search(fl)) or fn.startswith("q35_")


def engine_counts(profile: CachegrindProfile) -> dict[str, int]:
    """Per event, the cost of the engine's functions: every function with code in the engine's C
    sources (or named q35_*), including what it inlined from elsewhere."""
    engine_fns = {fn for fl, fn in profile.by_function if is_engine(fl, fn)}
    return {e: profile.total_where(e, lambda fl, fn: fn in engine_fns) for e in profile.events}


def _failure(r: subprocess.CompletedProcess, what: str) -> CounterRunError:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith(("==", "--"))]
    return CounterRunError(f"{what} failed (exit status {r.returncode}): {lines[-1] if lines else 'no message'}")


def _run_once(backend: str, plan_file: Path, out_file: Path, cache_sim: bool, cache: CacheModel) -> _RunCounts:
    t0 = time.perf_counter()
    if backend == "cachegrind":
        cmd = [valgrind_path() or "valgrind", "--tool=cachegrind", f"--cache-sim={'yes' if cache_sim else 'no'}",
               "--branch-sim=no", *(cache.valgrind_args() if cache_sim else []),
               f"--cachegrind-out-file={out_file}", *child_argv(plan_file)]
    else:
        cmd = perf_command(shutil.which("perf") or "perf", out_file, child_argv(plan_file))
    try:
        r = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CounterRunError(f"a counting run under {backend} took over {RUN_TIMEOUT_S} s") from None
    if r.returncode != 0:
        raise _failure(r, f"the counting run under {backend}")
    seconds = time.perf_counter() - t0
    if backend == "perf":
        n = parse_perf_count(out_file.read_text())
        if n is None:
            raise CounterRunError(f"perf stat did not count instructions: {out_file.read_text().strip()[-120:]}")
        return _RunCounts({"Ir": n}, None, seconds)
    profile = read_cachegrind(out_file)
    return _RunCounts(dict(zip(profile.events, profile.summary)), engine_counts(profile), seconds)


# ----------------------------------------------------------------------------
# the measurement

def _per_call(new: dict[str, int], base: dict[str, int], calls: int) -> Counts:
    def d(*events: str) -> float | None:
        if not all(e in new for e in events):
            return None
        return sum(new[e] - base[e] for e in events) / calls
    return Counts(d("Ir"), d("I1mr"), d("D1mr", "D1mw"), d("ILmr", "DLmr", "DLmw"))


def count_kernels(specs: list[KernelSpec], backend: str = "cachegrind", cache_sim: bool = True,
                  jobs: int | None = None, cache: CacheModel = CacheModel()) -> CounterBatch:
    """Instructions (and simulated cache misses) per call of each kernel: K kernels in K + 1 runs
    of the child (two for one kernel), `jobs` at a time (default: 2, or 1 on a one-CPU machine).
    backend: cachegrind, perf, or auto (see choose_backend); cache_sim: cachegrind's cache
    simulation (misses), about half again the time."""
    if not specs:
        raise UsageError("no kernels to count")
    backend, _ = choose_backend(backend)
    specs = [check_spec(s, backend) for s in specs]
    extra = [extra_calls(s, backend) for s in specs]
    base = [WARMUP_CALLS] * len(specs)
    plans = [base] + [[c + (extra[j] if i == j else 0) for i, c in enumerate(base)] for j in range(len(specs))]
    jobs = jobs or max(1, min(2, len(os.sched_getaffinity(0))))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="harness-counters-") as tmp:
        tmpdir = Path(tmp)
        files = []
        for i, calls in enumerate(plans):
            plan_file = tmpdir / f"plan{i:04d}.json"
            plan_file.write_text(json.dumps({"kernels": [s.plan_entry() for s in specs], "calls": calls}))
            files.append((plan_file, tmpdir / f"out{i:04d}"))
        with ThreadPoolExecutor(max_workers=jobs) as ex:
            runs = list(ex.map(lambda f: _run_once(backend, f[0], f[1], cache_sim, cache), files))
    seconds = time.perf_counter() - t0
    results = []
    for j, spec in enumerate(specs):
        new, old = runs[j + 1], runs[0]
        kernel = _per_call(new.engine, old.engine, extra[j]) if new.engine is not None else None
        results.append(CounterResult(spec, backend, extra[j], kernel, _per_call(new.whole, old.whole, extra[j])))
    return CounterBatch(results, backend, len(runs), seconds, tuple(r.seconds for r in runs),
                        runs[0].whole["Ir"])


def count_kernel(spec: KernelSpec, **kwargs) -> CounterResult:
    """count_kernels of one kernel (two runs)."""
    return count_kernels([spec], **kwargs).results[0]
