"""llama-bench-style measurements of the native engine.

pp<N>: a fresh context, one N-token prompt in u-batches, logits of the last token only.
tg<N>: a fresh context, N tokens generated one at a time (each decode returns logits).
Each test runs once untimed (warm-up: page in the weights, fill the caches), then r times.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .engine import Session
from .model import Model
from .provenance import cpu_model, git_commit, now_iso


@dataclass
class BenchConfig:
    n_prompt: int = 512
    n_gen: int = 128
    repetitions: int = 3
    threads: int = 2
    isa: str = "auto"
    ubatch: int = 512
    fdn_threshold: int = 512
    seed: int = 0
    vocab_strategy: str = "full"


@dataclass
class BenchResult:
    test: str                 # pp512 / tg128
    n_prompt: int
    n_gen: int
    samples_ns: list[int]
    bytes_per_token: int
    extra: dict = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return self.n_prompt or self.n_gen

    @property
    def samples_ts(self) -> list[float]:
        return [self.n_tokens * 1e9 / ns for ns in self.samples_ns]

    @property
    def avg_ts(self) -> float:
        return statistics.fmean(self.samples_ts)

    @property
    def stddev_ts(self) -> float:
        return statistics.stdev(self.samples_ts) if len(self.samples_ts) > 1 else 0.0

    @property
    def weight_gbps(self) -> float:
        """Weight bytes streamed per second in token generation (every token reads them all)."""
        return self.bytes_per_token * self.avg_ts / 1e9 if self.n_gen else float("nan")


def _time_pp(s: Session, tokens: np.ndarray) -> int:
    s.reset()
    t0 = time.perf_counter_ns()
    s.prefill(tokens, all_logits=False)
    return time.perf_counter_ns() - t0


def _time_tg(s: Session, first: int, n: int) -> int:
    s.reset()
    tok = first
    t0 = time.perf_counter_ns()
    for _ in range(n):
        tok = s.decode_top1(tok)        # greedy: each step depends on the last (argmax: no logits vector)
    return time.perf_counter_ns() - t0


def run_bench(model: Model, cfg: BenchConfig) -> list[BenchResult]:
    rng = np.random.default_rng(cfg.seed)
    vocab = model.config.vocab_size
    ctx = max(cfg.n_prompt, cfg.n_gen, 1)
    results = []
    with Session(model, isa=cfg.isa, threads=cfg.threads, ubatch=cfg.ubatch,
                 fdn_threshold=cfg.fdn_threshold, ctx=ctx, vocab_strategy=cfg.vocab_strategy) as s:
        if cfg.n_prompt > 0:
            tokens = rng.integers(0, vocab, cfg.n_prompt)
            _time_pp(s, tokens)
            samples = [_time_pp(s, tokens) for _ in range(cfg.repetitions)]
            results.append(BenchResult(f"pp{cfg.n_prompt}", cfg.n_prompt, 0, samples, model.bytes_per_token()))
        if cfg.n_gen > 0:
            first = int(rng.integers(0, vocab))
            _time_tg(s, first, cfg.n_gen)
            samples = [_time_tg(s, first, cfg.n_gen) for _ in range(cfg.repetitions)]
            results.append(BenchResult(f"tg{cfg.n_gen}", 0, cfg.n_gen, samples, model.bytes_per_token()))
        isa = s.isa
    from .machine import read_bandwidth
    bw = read_bandwidth(cfg.threads)
    for r in results:
        r.extra["isa"] = isa
        r.extra["read_gbps"] = bw
    return results


def records(model: Model, cfg: BenchConfig, results: list[BenchResult]) -> list[dict]:
    """One dict per test with llama-bench's JSON field names, plus ours."""
    commit, dirty = git_commit()
    n_params = sum(int(np.prod(model.info(sp.name).shape)) for sp in model.specs)
    out = []
    for r in results:
        out.append({
            # llama-bench fields
            "build_commit": commit[:12], "cpu_info": cpu_model(), "backends": "CPU",
            "model_filename": model.path, "model_type": f"{model.config.arch} {model.name}",
            "model_size": model.weight_bytes(), "model_n_params": n_params,
            "n_batch": cfg.ubatch, "n_ubatch": cfg.ubatch, "n_threads": cfg.threads,
            "type_k": "f32", "type_v": "f32", "n_gpu_layers": 0, "use_mmap": True,
            "n_prompt": r.n_prompt, "n_gen": r.n_gen, "n_depth": 0, "test_time": now_iso(),
            "avg_ns": int(statistics.fmean(r.samples_ns)),
            "stddev_ns": int(statistics.stdev(r.samples_ns)) if len(r.samples_ns) > 1 else 0,
            "avg_ts": r.avg_ts, "stddev_ts": r.stddev_ts,
            "samples_ns": r.samples_ns, "samples_ts": r.samples_ts,
            # ours
            "engine": "qwen35-harness", "version": __version__, "commit": commit, "dirty": dirty,
            "isa": r.extra.get("isa"), "fdn_threshold": cfg.fdn_threshold, "ubatch": cfg.ubatch,
            "vocab_strategy": cfg.vocab_strategy, "bytes_per_token": r.bytes_per_token,
            "weight_gbps": r.weight_gbps if r.n_gen else None,
            "machine_read_gbps": r.extra.get("read_gbps"),
            "bandwidth_fraction": r.weight_gbps / r.extra["read_gbps"] if r.n_gen and r.extra.get("read_gbps") else None,
        })
    return out


def format_markdown(model: Model, cfg: BenchConfig, results: list[BenchResult]) -> str:
    size = model.weight_bytes() / 2**20
    head = ("| model | size | isa | threads | ubatch | fdn | test | t/s | weights GB/s (% of read bw) |\n"
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = [head]
    for r in results:
        gbps = ""
        if r.n_gen:
            gbps = f"{r.weight_gbps:.2f} ({100 * r.weight_gbps / r.extra['read_gbps']:.0f}% of {r.extra['read_gbps']:.1f})"
        rows.append(f"| {model.name} | {size:.2f} MiB | {r.extra.get('isa')} | {cfg.threads} | {cfg.ubatch} | "
                    f"{cfg.fdn_threshold} | {r.test} | {r.avg_ts:.2f} ± {r.stddev_ts:.2f} | {gbps} |")
    return "\n".join(rows)


def format_csv(recs: list[dict]) -> str:
    import pandas as pd
    return pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, list)} for r in recs]).to_csv(index=False)


def format_json(recs: list[dict]) -> str:
    return json.dumps(recs, indent=2)
