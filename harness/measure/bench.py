"""llama-bench-style measurements of the native engine.

pp<N>: one N-token prompt in u-batches, logits of the last token only.
tg<N>: N tokens generated one at a time (each decode returns logits).
"<test> @ d<D>" (llama-bench's -d): D random tokens are prefilled once, untimed, and the session
state saved; every run of the test then starts from that state (restored, untimed). Without a
depth every run starts from an empty context.
Each test runs `warmup` times untimed (page in the weights, fill the caches), then r times timed.
With profile=True a separate session with the per-op profiler on runs each test once more after
the timed runs, so the timed runs pay nothing for profiling.
Each result says whether the machine was busy (machine.classify_busy): from the CPU time other
processes took during the timed runs, the load average, and for tg with several threads two decodes
on a 1-thread session after the timed runs (outside the figure) to compare the speed against.
run_bench probes the read bandwidth at the start and the end of the run (the roofline's reference).
"""
from __future__ import annotations

import contextlib
import inspect
import os
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from harness.engine.session import REPACK_MODES, Session, check_cache_type, check_threads
from harness.errors import RepackMemoryError, UsageError
from harness.settings import DEFAULT_FDN_THRESHOLD
from harness.model.loader import Model
from harness.measure.depth_curve import kv_bytes_read
from harness.measure.machine import affinity_cpus, classify_busy, cpu_sample, others_cpu_since, start_run_bandwidth
from harness.measure.rss import peak_rss_bytes, reset_peak
from harness.provenance import load_average
from harness.store.schema import SPREAD_LIMIT, Summary, summarize, test_name

@dataclass
class BenchConfig:
    n_prompt: int = 512
    n_gen: int = 128
    repetitions: int = 3
    threads: int = 2
    isa: str = "auto"
    ubatch: int = 512
    fdn_threshold: int = DEFAULT_FDN_THRESHOLD
    seed: int = 0
    n_depth: int = 0
    vocab_strategy: str = "full"
    type_k: str = "f32"                   # KV cache types (ggml_types.CACHE_TYPES)
    type_v: str = "f32"
    repack: str = "auto"                  # Session's repack mode (auto / on / off)
    warmup: int = 1
    profile: bool = False                 # a separate profiled run of each test
    cpus: tuple[int, ...] | None = None   # pin the process (and the engine's threads) to these CPUs
    spread_limit: float = SPREAD_LIMIT
    refresh_bandwidth: bool = False       # re-take the cached long read-bandwidth measurement too
    prompt_ids: tuple[int, ...] = ()      # a real prompt's ids for pp (its first n_prompt) and tg's
    prompt_source: str = ""               # first token; empty: random ids. source: where they came from

    def check(self) -> None:
        for name in ("n_prompt", "n_gen", "n_depth", "warmup"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.prompt_ids and self.n_prompt > len(self.prompt_ids):
            raise UsageError(f"-p {self.n_prompt} is longer than the prompt ({len(self.prompt_ids)} tokens)")
        if self.repetitions < 1:
            raise UsageError("-r must be >= 1")
        check_threads(self.threads)
        check_cache_type("k", self.type_k)
        check_cache_type("v", self.type_v)
        if self.repack not in REPACK_MODES:
            raise UsageError(f"unknown repack mode {self.repack!r} (choose from {', '.join(REPACK_MODES)})")
        if self.n_prompt == 0 and self.n_gen == 0:
            raise UsageError("nothing to measure: both the prompt and the generated length are 0")


@dataclass
class BenchResult:
    test: str                 # pp512 / tg128 / pp512 @ d1024
    n_prompt: int
    n_gen: int
    samples_ns: list[int]
    bytes_per_token: int
    n_depth: int = 0
    peak_rss_bytes: int | None = None
    profile: object = None    # pandas DataFrame (layer, kind, op, calls, ns, bytes) of the profiled run
    extra: dict = field(default_factory=dict)
    machine_busy: bool = False  # other work took CPU time the threads needed (machine.classify_busy)
    busy_note: str = ""         # why, in one line ('' when not busy)

    @property
    def n_tokens(self) -> int:
        return self.n_prompt + self.n_gen

    @property
    def samples_ts(self) -> list[float]:
        return [self.n_tokens * 1e9 / ns for ns in self.samples_ns]

    @property
    def summary(self) -> Summary:
        return summarize(self.samples_ts)

    @property
    def avg_ts(self) -> float:
        return self.summary.avg

    @property
    def median_ts(self) -> float:
        return self.summary.median

    @property
    def stddev_ts(self) -> float:
        """As llama-bench writes it: 0 for a single sample (the summary's stddev is NaN there)."""
        sd = self.summary.stddev
        return 0.0 if math.isnan(sd) else sd

    def spread_ok(self, limit: float = SPREAD_LIMIT) -> bool:
        """False when the runs scatter too much to judge (or there is only one run)."""
        s = self.summary.spread
        return bool(s <= limit) if not np.isnan(s) else False

    def spread_note(self, limit: float = SPREAD_LIMIT) -> str:
        """'' when the spread is fine, else one line saying why this figure cannot be judged."""
        s = self.summary.spread
        if np.isnan(s):
            return f"{self.test}: one repetition, spread unknown: too few runs to judge"
        if s > limit:
            return (f"{self.test}: spread too wide to judge (stddev {100 * s:.1f}% of the median "
                    f"> {100 * limit:.0f}%); rerun with more repetitions or on a quieter machine")
        return ""

    @property
    def weight_gbps(self) -> float:
        """Bytes streamed per second in pure token generation (every token reads all the weights),
        at the median rate; nan for prompt processing (it reads them once per u-batch). At a depth
        bytes_per_token includes the KV-cache bytes each generated token reads."""
        if self.n_gen and not self.n_prompt:
            return self.bytes_per_token * self.median_ts / 1e9
        return float("nan")


# ----------------------------------------------------------------------------
# running

def session_takes(name: str) -> bool:
    """Whether this engine's Session takes the argument (by name, or through **kwargs, as a wrapper
    around it does)."""
    params = inspect.signature(Session.__init__).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def session_kwargs(cfg: BenchConfig, ctx: int, profile: bool = False) -> dict:
    """Session arguments; vocab_strategy and the cache types are passed only when they are not the
    defaults ('full', f32), so this works with engines that do not know the arguments yet."""
    kw = dict(isa=cfg.isa, threads=cfg.threads, ubatch=cfg.ubatch, fdn_threshold=cfg.fdn_threshold,
              ctx=ctx, profile=profile)
    if (cfg.type_k, cfg.type_v) != ("f32", "f32"):
        kw.update(type_k=cfg.type_k, type_v=cfg.type_v)
    if cfg.vocab_strategy != "full":
        check_vocab_strategy_supported(cfg.vocab_strategy)
        kw["vocab_strategy"] = cfg.vocab_strategy
    if cfg.repack != "auto":
        if not session_takes("repack"):
            raise UsageError(f"--repack {cfg.repack}: this engine has no repacked weights yet")
        kw["repack"] = cfg.repack
    return kw


def check_vocab_strategy_supported(strategy: str) -> None:
    if strategy != "full" and not session_takes("vocab_strategy"):
        raise UsageError(f"vocab strategy {strategy!r}: this engine has no vocab strategies yet "
                         f"(only 'full', the whole LM head, is available)")


@contextlib.contextmanager
def pinned(cpus):
    """Restrict this thread (and the threads it starts, e.g. the engine's pool) to `cpus`."""
    if not cpus:
        yield
        return
    if not hasattr(os, "sched_setaffinity"):
        raise UsageError("CPU pinning is not available on this platform")
    old = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, set(cpus))
    except OSError as e:
        raise UsageError(f"cannot pin to CPUs {sorted(cpus)}: {e.strerror} "
                         f"(this process may use {sorted(old)})") from None
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def _start(s: Session, state: bytes | None) -> None:
    if state is None:
        s.reset()
    else:
        s.restore_state(state)


def _run_pp(s: Session, state, tokens: np.ndarray) -> int:
    _start(s, state)
    t0 = time.perf_counter_ns()
    s.prefill(tokens, all_logits=False)
    return time.perf_counter_ns() - t0


def _run_tg(s: Session, state, first: int, n: int) -> int:
    _start(s, state)
    tok = first
    t0 = time.perf_counter_ns()
    for _ in range(n):
        tok = s.decode_top1(tok)        # greedy: each step depends on the last (argmax: no logits vector)
    return time.perf_counter_ns() - t0


def _run_pg(s: Session, state, tokens: np.ndarray, n: int) -> int:
    _start(s, state)
    t0 = time.perf_counter_ns()
    tok = int(s.prefill(tokens, all_logits=False).argmax())
    for _ in range(n):
        tok = s.decode_top1(tok)
    return time.perf_counter_ns() - t0


def _runner(n_prompt: int, n_gen: int, seed: int, vocab: int, prompt_ids: tuple[int, ...] = ()):
    """The timed body of a test as f(session, state) -> ns. Inputs are fixed by (seed, test), or
    are the prompt's first n_prompt ids (tg starts from its first id)."""
    if prompt_ids:
        tokens, first = np.asarray(prompt_ids[:n_prompt], dtype=np.int64), int(prompt_ids[0])
    else:
        tokens = np.random.default_rng([seed, 1, n_prompt]).integers(0, vocab, n_prompt)
        first = int(np.random.default_rng([seed, 2]).integers(0, vocab))
    if n_prompt and n_gen:
        return lambda s, st: _run_pg(s, st, tokens, n_gen)
    if n_prompt:
        return lambda s, st: _run_pp(s, st, tokens)
    return lambda s, st: _run_tg(s, st, first, n_gen)


def _depth_state(s: Session, n_depth: int, seed: int, vocab: int) -> bytes | None:
    if not n_depth:
        return None
    s.reset()
    s.prefill(np.random.default_rng([seed, 3, n_depth]).integers(0, vocab, n_depth), all_logits=False)
    return s.save_state()


def _one_thread_tg(s1: Session, state, first: int, tokens: int = 2) -> float:
    """Tokens/s of single-token decodes on a 1-thread session: the best of `tokens` decodes."""
    _start(s1, state)
    tok, best = first, None
    for _ in range(tokens):
        t0 = time.perf_counter_ns()
        tok = s1.decode_top1(tok)
        dt = time.perf_counter_ns() - t0
        best = dt if best is None else min(best, dt)
    return 1e9 / max(best, 1)


def _profile(ps: Session, run, state) -> object:
    ps.reset_profile()
    run(ps, state)
    df = ps.profile()
    df["layer"] = [-1 if x == "head" else int(x) for x in df["layer"]]   # -1: embedding, final norm, LM head
    return df


def bench_tests(cfg: BenchConfig) -> list[tuple[int, int]]:
    """The (n_prompt, n_gen) tests of one `harness bench` run: pp then tg, as llama-bench."""
    return [t for t in ((cfg.n_prompt, 0), (0, cfg.n_gen)) if t[0] or t[1]]


def iter_bench(model: Model, cfg: BenchConfig, tests: list[tuple[int, int]],
               ready: Callable[[], None] | None = None) -> Iterator[BenchResult]:
    """Measure each (n_prompt, n_gen) test at cfg's depth; yields each result as soon as it is done.
    ready: called once the sessions are made (what the engine refuses has been refused), before
    the first run (`harness bench` gives its machine-state warnings there)."""
    vocab = model.config.vocab_size
    ctx = cfg.n_depth + max(p + g for p, g in tests)
    bpt = model.bytes_per_token()
    with contextlib.ExitStack() as stack:
        stack.enter_context(pinned(cfg.cpus))
        cpus = len(affinity_cpus())
        t_start = time.perf_counter()
        s = stack.enter_context(Session(model, **session_kwargs(cfg, ctx)))
        start_ms = (time.perf_counter() - t_start) * 1e3          # repacking, when on, is most of it
        packed = s.packed_bytes
        # the profiled and one-thread sessions run the main session's layout (a second copy of the repacked
        # weights: where it does not fit, the profile is refused and the one-thread check left out)
        same_layout = replace(cfg, repack="on" if packed else "off")
        ps = stack.enter_context(Session(model, **session_kwargs(same_layout, ctx, profile=True))) if cfg.profile else None
        state = _depth_state(s, cfg.n_depth, cfg.seed, vocab)
        if ready is not None:
            ready()
        for n_prompt, n_gen in tests:
            run = _runner(n_prompt, n_gen, cfg.seed, vocab, cfg.prompt_ids)
            rss_reset = reset_peak()
            for _ in range(cfg.warmup):
                run(s, state)
            load = load_average()
            before = cpu_sample()
            samples = [run(s, state) for _ in range(cfg.repetitions)]
            others = others_cpu_since(before)
            rss = peak_rss_bytes()
            speed_1 = None
            if n_gen and not n_prompt and cfg.threads > 1:     # after the RSS reading: its buffers do not count
                try:
                    with Session(model, **session_kwargs(replace(same_layout, threads=1), ctx)) as s1:
                        speed_1 = _one_thread_tg(s1, state, int(np.random.default_rng([cfg.seed, 2]).integers(0, vocab)))
                except RepackMemoryError:
                    pass
            prof = _profile(ps, run, state) if ps is not None else None
            # at a depth a generated token reads the KV cache too (depth_curve.kv_bytes_read)
            read = bpt + (kv_bytes_read(model, cfg.n_depth, n_gen, cfg.type_k, cfg.type_v) if cfg.n_depth and n_gen and not n_prompt else 0)
            r = BenchResult(test_name(n_prompt, n_gen, cfg.n_depth), n_prompt, n_gen, samples, read,
                            cfg.n_depth, rss, prof, {"isa": s.isa, "rss_reset": rss_reset, "load_before": load,
                                                     "others_cpu": others, "cpus": cpus, "tg_1thread_ts": speed_1,
                                                     "packed_bytes": packed, "session_start_ms": start_ms,
                                                     "repack_note": getattr(s, "repack_note", "")})
            r.machine_busy, r.busy_note = classify_busy(load, cfg.threads, cpus, r.median_ts, speed_1, others)
            yield r


def run_bench(model: Model, cfg: BenchConfig, ready: Callable[[], None] | None = None) -> list[BenchResult]:
    """The tests of cfg, with the read bandwidth probed at the start and at the end of the run
    (extra: read_gbps, the better of the two and the roofline's reference; read_gbps_start,
    read_gbps_end; read_measured, in words; read_source: probe, or cache when no probe worked).
    ready: as iter_bench's."""
    cfg.check()
    with pinned(cfg.cpus):
        bw = start_run_bandwidth(cfg.threads, refresh=cfg.refresh_bandwidth)
    results = list(iter_bench(model, cfg, bench_tests(cfg), ready))
    with pinned(cfg.cpus):
        bw.finish()
    for r in results:
        r.extra.update({"read_gbps": bw.gbps, "read_measured": bw.measured, "read_source": bw.source,
                        "read_gbps_start": bw.start_gbps, "read_gbps_end": bw.end_gbps,
                        "read_threads": bw.threads, "read_cached_gbps": bw.fallback.gbps if bw.fallback else None})
    return results
