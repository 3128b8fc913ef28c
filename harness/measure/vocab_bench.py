"""Running the vocab strategies: quality against a reference model over a fixed token sequence,
and the speed of each strategy in token generation with the share of time in the LM head."""
from __future__ import annotations

import contextlib

import statistics
import time
from dataclasses import dataclass

import numpy as np

from harness.engine.session import Session
from harness.errors import UsageError
from harness.ggml_types import GGMLType
from harness.model.loader import Model
from harness.analysis.quality import QualityAccumulator, QualityMeasures
from harness.engine.vocab import EXACTNESS, parse_strategy

# llama.cpp's general.file_type (llama_ftype) -> the name llama-quantize gives it
FILE_TYPES = {0: "f32", 1: "f16", 2: "q4_0", 7: "q8_0", 14: "q4_k_s", 15: "q4_k_m", 16: "q5_k_s",
              17: "q5_k_m", 18: "q6_k", 30: "iq4_xs", 32: "bf16"}
REFERENCE_TYPES = {GGMLType.F32, GGMLType.BF16}
HEAD_OPS = ("mm_lm_head", "lm_head_screen")


def quant_label(model: Model) -> str:
    md = model.metadata
    if "harness.synth.quant" in md:
        return str(md["harness.synth.quant"])
    ft = md.get("general.file_type")
    return FILE_TYPES.get(int(ft), f"ftype{ft}") if ft is not None else "unknown"


def resolve_reference(model: Model, given: str | None) -> str:
    """The reference file: the one given; for a synthetic model its F32 twin (same seed and head,
    made and cached on first use); for a file whose matrices are all F32/BF16, the file itself."""
    if given:
        return given
    md = model.metadata
    if "harness.synth.preset" in md:
        from harness.model.synth import cached_model
        return cached_model(str(md["harness.synth.preset"]), "f32", seed=int(md.get("harness.synth.seed", 0)),
                            head_rank=int(md.get("harness.synth.head_rank", 0)),
                            head_noise=round(float(md.get("harness.synth.head_noise", 0.0)), 6))
    types = {model.info(s.name).type for s in model.specs if len(model.info(s.name).shape) == 2}
    if types <= REFERENCE_TYPES:
        return model.path
    raise UsageError(f"{model.path}: not a synthetic model and not F32/BF16 weights: give --reference "
                     f"MODEL_F32 (the F32 or BF16 file of the same model)")


def check_same_shape(model: Model, ref: Model) -> None:
    a, b = model.config, ref.config
    for f in ("vocab_size", "n_embd", "n_layer", "n_ff"):
        if getattr(a, f) != getattr(b, f):
            raise UsageError(f"reference {ref.path} is not the same model: {f} {getattr(b, f)} != {getattr(a, f)}")


def default_tokens(vocab: int, n: int = 512, seed: int = 0) -> np.ndarray:
    """The fixed sequence: n seeded random ids."""
    if n < 1:
        raise UsageError(f"need at least one token, got {n}")
    return np.random.default_rng(seed).integers(0, vocab, n).astype(np.int32)


def run_quality(model: Model, ref: Model, strategy: str, tokens, k: int = 10, threads: int = 2,
                isa: str = "auto", block: int = 64) -> QualityMeasures:
    """The measures of (model, strategy) against (ref, full) over tokens, run in blocks of positions."""
    return run_quality_strategies(model, ref, [strategy], tokens, k, threads, isa, block)[0]


def run_quality_strategies(model: Model, ref: Model, strategies: list[str], tokens, k: int = 10,
                           threads: int = 2, isa: str = "auto", block: int = 64) -> list[QualityMeasures]:
    """run_quality for several strategies of one model: the reference runs once per block of
    positions and every strategy's session is compared with it."""
    check_same_shape(model, ref)
    toks = np.asarray(tokens, dtype=np.int32)
    if toks.size == 0:
        raise UsageError("no tokens given")
    accs = [QualityAccumulator(k) for _ in strategies]
    with contextlib.ExitStack() as stack:
        sr = stack.enter_context(Session(ref, isa=isa, threads=threads, ctx=toks.size))
        sts = [stack.enter_context(Session(model, isa=isa, threads=threads, ctx=toks.size, vocab_strategy=v))
               for v in strategies]
        for i in range(0, toks.size, block):
            want = sr.prefill(toks[i:i + block])
            for acc, st in zip(accs, sts):
                acc.add(want, st.prefill(toks[i:i + block]))
    return [acc.result() for acc in accs]


# ----------------------------------------------------------------------------
# speed

@dataclass
class StrategyTiming:
    strategy: str
    samples_ts: list[float]       # tg tokens per second (wall clock), one per repetition
    cpu_samples_ts: list[float]   # the same over process CPU time: with 1 thread, blind to preemption
    head_share: float             # share of profiled time in the LM head (screening included)
    head_ms_per_token: float
    candidates_per_row: float     # screened: rows computed exactly per token (NaN otherwise)

    @property
    def median_ts(self) -> float:
        return statistics.median(self.samples_ts)

    @property
    def median_cpu_ts(self) -> float:
        return statistics.median(self.cpu_samples_ts)


def _tg(s: Session, first: int, n: int) -> tuple[float, float]:
    """n greedy decode steps: tokens per second of wall time and of process CPU time."""
    s.reset()
    tok = first
    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
    for _ in range(n):
        tok = s.decode_top1(tok)
    t1, c1 = time.perf_counter_ns(), time.process_time_ns()
    return n * 1e9 / (t1 - t0), n * 1e9 / max(c1 - c0, 1)


def run_vocab_bench(model: Model, strategies: list[str], n_gen: int = 32, repetitions: int = 3,
                    threads: int = 2, isa: str = "auto", seed: int = 0) -> list[StrategyTiming]:
    """tg of every strategy, the repetitions interleaved (round r runs every strategy once) so
    that a machine whose speed drifts affects them alike; profile on for all. Medians (wall and CPU
    time) are over the repetitions; medians are taken because a loaded machine gives outliers."""
    if n_gen < 1 or repetitions < 1:
        raise UsageError("-n and -r must be >= 1")
    for st in strategies:
        parse_strategy(st)
    first = int(np.random.default_rng(seed).integers(0, model.config.vocab_size))
    sessions = {}
    try:
        for st in strategies:   # builds each strategy's copies (once per model) before any timing
            sessions[st] = Session(model, isa=isa, threads=threads, ctx=n_gen, profile=True, vocab_strategy=st)
        samples = {st: [] for st in strategies}
        for s in sessions.values():
            _tg(s, first, n_gen)   # warm-up
            s.reset_profile()
        for _ in range(repetitions):
            for st, s in sessions.items():
                samples[st].append(_tg(s, first, n_gen))
        out = []
        for st, s in sessions.items():
            prof = s.profile()
            head = prof[(prof.layer == "head") & prof.op.isin(HEAD_OPS)].ns.sum()
            vs = s.vocab_stats()
            out.append(StrategyTiming(st, [w for w, _ in samples[st]], [c for _, c in samples[st]],
                                      float(head / prof.ns.sum()),
                                      float(head / 1e6 / (n_gen * repetitions)), vs["candidates_per_row"]))
        return out
    finally:
        for s in sessions.values():
            s.close()


def format_vocab_bench(model: Model, results: list[StrategyTiming], threads: int) -> str:
    full = next((r for r in results if r.strategy == "full"), None)
    rows = [f"{model.name} ({quant_label(model)}), {threads} threads, vocab {model.config.vocab_size}",
            "",
            ("| strategy | exact for | tg t/s | vs full | tg t/s (CPU time) | vs full | LM head ms/token | "
             "LM head share | candidates/token |"),
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        ex = parse_strategy(r.strategy).exactness
        exact = "all logits" if ex.distribution else "top-1, top-K" if ex.topk else "top-1" if ex.top1 else "no"
        ratio = f"{r.median_ts / full.median_ts:.2f}" if full else ""
        cpu_ratio = f"{r.median_cpu_ts / full.median_cpu_ts:.2f}" if full else ""
        cand = "" if np.isnan(r.candidates_per_row) else f"{r.candidates_per_row:.0f}"
        rows.append(f"| {r.strategy} | {exact} | {r.median_ts:.2f} | {ratio} | {r.median_cpu_ts:.2f} | {cpu_ratio} | "
                    f"{r.head_ms_per_token:.2f} | {100 * r.head_share:.1f}% | {cand} |")
    return "\n".join(rows)


def exactness_table() -> str:
    rows = ["| strategy | top-1 exact | top-K exact | full distribution | note |", "| --- | --- | --- | --- | --- |"]
    yn = {True: "yes", False: "no"}
    for name, e in EXACTNESS.items():
        rows.append(f"| {name} | {yn[e.top1]} | {yn[e.topk]} | {yn[e.distribution]} | {e.note} |")
    return "\n".join(rows)
