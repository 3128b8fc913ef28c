"""Depth curves: prompt-processing and generation speed as the context fills, the way ik_llama.cpp's
llama-sweep-bench walks one context (examples/sweep-bench/sweep-bench.cpp).

One session, one context of `ctx` tokens, walked in steps of `step` tokens. At each depth n_kv
(0, step, 2*step, ... while n_kv + step fits): the state is saved, `tg` tokens are generated one by
one from n_kv (S_TG = tg / T_TG), the state is restored, and `step` prompt tokens are prefilled at
n_kv as one u-batch (S_PP = step / T_PP); that prefill is what brings the context to the next depth.
So the whole curve costs one pass over the context plus the generations, where separate
`llama-bench -d D` runs each prefill their depth again.

A peer engine gives the same curve: ik_llama.cpp's llama-sweep-bench (JSONL, read as it is), or
llama.cpp's llama-bench with one -d per depth (-p step -n tg -r 1). Points carry ik's JSONL keys
(n_kv_max, n_batch, n_ubatch, flash_attn, n_gpu_layers, n_threads, n_threads_batch, pp, tg, n_kv,
t_pp, speed_pp, t_tg, speed_tg) plus the engine, so one file format holds every engine's curve.

Bytes read per generated token at depth (the roofline's numerator): the weights
(Model.bytes_per_token) plus the KV cache of every full-attention layer, K and V of n_head_kv heads of
head_dim values each, over the n_kv + i positions token i attends to (kv_bytes_read), at the cache
type's bytes per value: F32 (4, our default), F16 or BF16 (2), Q8_0 (34 per 32). A peer's
type_k/type_v set its own, which the point does not know: its bytes assume ours unless given."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from harness.engine.session import cache_value_bytes
from harness.errors import HarnessError, UsageError
from harness.model.loader import Model
from harness.store import llama_bench_format as fmt

OURS = "qwen35-harness"
IK_KEYS = ("n_kv_max", "n_batch", "n_ubatch", "flash_attn", "n_gpu_layers", "n_threads", "n_threads_batch",
           "pp", "tg", "n_kv", "t_pp", "speed_pp", "t_tg", "speed_tg")


@dataclass
class DepthPoint:
    engine: str
    n_kv_max: int
    n_batch: int
    n_ubatch: int
    flash_attn: int
    n_gpu_layers: int
    n_threads: int
    n_threads_batch: int
    pp: int
    tg: int
    n_kv: int
    t_pp: float            # seconds for the pp tokens (nan when not measured)
    speed_pp: float        # tokens/s
    t_tg: float
    speed_tg: float
    bytes_per_tg_token: float | None = None   # weights + KV read per generated token, averaged over the tg tokens
    settings: str = ""     # a peer's settings (llama_bench_format.settings_text); ours: our_settings_text

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and v != v else v) for k, v in asdict(self).items()}


def kv_bytes_read(model: Model, n_kv: int, tg: int, type_k: str = "f32", type_v: str = "f32") -> float:
    """KV-cache bytes one generated token reads, averaged over tg tokens starting at depth n_kv:
    token i attends to n_kv + i + 1 positions, in every full-attention layer, K and V, each at its
    cache type's bytes per value (engine.session.cache_value_bytes)."""
    c = model.config
    attn_layers = sum(1 for r in c.recurrent if not r)
    per_position = attn_layers * c.n_head_kv * c.head_dim * (cache_value_bytes(type_k) + cache_value_bytes(type_v))
    return per_position * (n_kv + (tg + 1) / 2)


def check_walk(ctx: int, step: int, tg: int, model_ctx: int) -> None:
    if step < 1 or tg < 0 or ctx < 1:
        raise UsageError("sweep-depth: -c, --step must be positive, -n at least 0")
    if step > ctx or tg > ctx:
        raise UsageError(f"sweep-depth: --step {step} and -n {tg} must fit in the context of {ctx} tokens")
    if ctx > model_ctx:
        raise UsageError(f"sweep-depth: -c {ctx} is beyond the model's context length {model_ctx}")


def depths(ctx: int, step: int, tg: int) -> list[int]:
    """The depths a walk measures: 0, step, ... while the prefill (step) and the generation (tg) fit."""
    return [d for d in range(0, ctx, step) if d + max(step, tg) <= ctx]


def walk_ours(model: Model, ctx: int, step: int, tg: int, threads: int, isa: str = "auto", seed: int = 0,
              fdn_threshold: int | None = None, log: Callable[[str], None] | None = None,
              type_k: str = "f32", type_v: str = "f32") -> list[DepthPoint]:
    """Our engine's curve (module docstring), with KV cache types type_k / type_v."""
    from harness.engine.session import Session
    check_walk(ctx, step, tg, model.config.context_length)
    vocab = model.config.vocab_size
    rng = np.random.default_rng([seed, 5])
    kw = {} if fdn_threshold is None else {"fdn_threshold": fdn_threshold}
    if (type_k, type_v) != ("f32", "f32"):
        kw.update(type_k=type_k, type_v=type_v)
    out = []
    with Session(model, isa=isa, threads=threads, ubatch=step, ctx=ctx, **kw) as s:
        s.prefill(rng.integers(0, vocab, step), all_logits=False)      # warm-up: weights paged in
        s.reset()
        bpt = model.bytes_per_token()
        for n_kv in depths(ctx, step, tg):
            t_tg = speed_tg = float("nan")
            if tg:
                state = s.save_state()
                tok = int(rng.integers(0, vocab))
                t0 = time.perf_counter()
                for _ in range(tg):
                    tok = s.decode_top1(tok)
                t_tg = time.perf_counter() - t0
                speed_tg = tg / t_tg
                s.restore_state(state)
            tokens = rng.integers(0, vocab, step)
            t0 = time.perf_counter()
            s.prefill(tokens, all_logits=False)
            t_pp = time.perf_counter() - t0
            p = DepthPoint(OURS, ctx, step, step, 0, 0, threads, threads, step, tg, n_kv, t_pp, step / t_pp,
                           t_tg, speed_tg, bpt + kv_bytes_read(model, n_kv, tg, type_k, type_v) if tg else None,
                           fmt.our_settings_text(type_k, type_v))
            out.append(p)
            if log:
                log(format_row(p))
    return out


# ----------------------------------------------------------------------------
# peers

def read_sweep_bench(text: str, where: str, engine: str = "ik_llama.cpp") -> list[DepthPoint]:
    """llama-sweep-bench --output-format jsonl (lines that are not JSON objects, its log, are skipped)."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            r = json.loads(line)
        except ValueError as e:
            raise HarnessError(f"{where}: line {i}: not valid JSON ({e})") from None
        missing = [k for k in ("pp", "tg", "n_kv", "speed_pp", "speed_tg") if k not in r]
        if missing:
            raise HarnessError(f"{where}: line {i} lacks {', '.join(missing)}: not llama-sweep-bench JSONL")
        vals = {k: r.get(k, 0) for k in IK_KEYS}
        out.append(DepthPoint(str(r.get("engine") or engine), **{k: (float(v) if k.startswith(("t_", "speed"))
                                                                    else int(v)) for k, v in vals.items()},
                              bytes_per_tg_token=r.get("bytes_per_tg_token"),
                              settings=r.get("settings") or fmt.settings_text(
                                  {k: r[k] for k in ("flash_attn", "n_batch", "n_gpu_layers") if k in r})))
    if not out:
        raise HarnessError(f"{where}: no llama-sweep-bench JSONL records")
    return out


def llama_bench_depth_command(binary: str, model: str, ctx: int, step: int, tg: int, threads: int,
                              extra: tuple[str, ...] = ()) -> list[str]:
    """llama-bench measuring the same points: one -d per depth, -p step -n tg, one repetition each
    (llama-sweep-bench also times each point once)."""
    ds = ",".join(str(d) for d in depths(ctx, step, tg))
    return [binary, "-m", model, "-t", str(threads), "-ub", str(step), "-p", str(step), "-n", str(tg), "-d", ds,
            "-r", "1", *extra, "-o", "json"]


def points_from_llama_bench(recs: list[dict], engine: str, ctx: int) -> list[DepthPoint]:
    """llama-bench records (pp and tg at each -d) as depth points."""
    by_depth: dict[int, dict] = {}
    for r in recs:
        d = int(r.get("n_depth", 0) or 0)
        slot = by_depth.setdefault(d, {"r": r})
        if int(r.get("n_prompt", 0)) and not int(r.get("n_gen", 0)):
            slot["pp"] = (int(r["n_prompt"]), float(r["avg_ts"]))
        elif int(r.get("n_gen", 0)) and not int(r.get("n_prompt", 0)):
            slot["tg"] = (int(r["n_gen"]), float(r["avg_ts"]))
    out = []
    for d in sorted(by_depth):
        slot = by_depth[d]
        r = slot["r"]
        pp, spp = slot.get("pp", (0, float("nan")))
        tg, stg = slot.get("tg", (0, float("nan")))
        out.append(DepthPoint(engine, ctx, int(r.get("n_batch", 0) or 0), int(r.get("n_ubatch", 0) or 0),
                              int(r.get("flash_attn", 0) or 0), int(r.get("n_gpu_layers", 0) or 0),
                              int(r.get("n_threads", 0) or 0), int(r.get("n_threads", 0) or 0), pp, tg, d,
                              pp / spp if pp else float("nan"), spp, tg / stg if tg else float("nan"), stg,
                              settings=fmt.settings_text(r)))
    return out


# llama-bench flags that take a 0/1 value where llama-sweep-bench (common args) takes a bare switch:
# ik_llama.cpp's llama-bench reads `-rtr 1`, its sweep-bench `-rtr` (common/common.cpp).
SWEEP_BENCH_BARE_SWITCHES = ("-rtr", "--run-time-repack")


def sweep_bench_args(extra: tuple[str, ...]) -> tuple[str, ...]:
    """Peer flags written for llama-bench, as llama-sweep-bench reads them: a bare-switch flag with
    a following 1 becomes the bare switch, with a following 0 is dropped; the rest pass as they are."""
    out: list[str] = []
    i = 0
    while i < len(extra):
        arg = extra[i]
        nxt = extra[i + 1] if i + 1 < len(extra) else None
        if arg in SWEEP_BENCH_BARE_SWITCHES and nxt in ("0", "1"):
            if nxt == "1":
                out.append(arg)
            i += 2
            continue
        out.append(arg)
        i += 1
    return tuple(out)


def run_peer_walk(engine: str, binary: str, model: str, ctx: int, step: int, tg: int, threads: int,
                  extra: tuple[str, ...] = (), timeout: float | None = None) -> list[DepthPoint]:
    """A peer's curve: llama-sweep-bench when the binary is one (its name says sweep-bench), else
    llama-bench with -d per depth. HarnessError with the peer's last error line on failure."""
    import os
    import subprocess
    from harness.store.llama_bench import parse_records_text
    sweep = "sweep-bench" in os.path.basename(binary)
    cmd = ([binary, "-m", model, "-c", str(ctx), "-ub", str(step), "-b", str(max(step, 2048)), "-n", str(tg),
            "-t", str(threads), *sweep_bench_args(extra), "--output-format", "jsonl"] if sweep else
           llama_bench_depth_command(binary, model, ctx, step, tg, threads, extra))
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HarnessError(f"{engine}: cannot run {binary}: {e}") from None
    last = next((ln.strip() for ln in reversed(r.stderr.splitlines()) if ln.strip()), "")
    if r.returncode != 0:
        raise HarnessError(f"{engine} exited with status {r.returncode}" + (f": {last}" if last else ""))
    if sweep:       # sweep-bench logs its JSONL through LOG_TEE: stdout and stderr both carry it
        return read_sweep_bench(r.stdout + "\n" + r.stderr, f"{engine} output", engine)
    return points_from_llama_bench(parse_records_text(r.stdout, f"{engine} output"), engine, ctx)


# ----------------------------------------------------------------------------
# output

def format_header() -> str:
    return ("|    PP |     TG |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |\n"
            "|-------|--------|--------|----------|----------|----------|----------|")


def format_row(p: DepthPoint) -> str:
    """One line of llama-sweep-bench's table."""
    def f(v, spec):
        return format(v, spec) if v == v else "     n/a"
    return (f"|{p.pp:6d} | {p.tg:6d} | {p.n_kv:6d} | {f(p.t_pp, '8.3f')} | {f(p.speed_pp, '8.2f')} | "
            f"{f(p.t_tg, '8.3f')} | {f(p.speed_tg, '8.2f')} |")


def format_jsonl(points: list[DepthPoint]) -> str:
    return "".join(json.dumps(p.as_dict()) + "\n" for p in points)


def points_as_rows(points: list[DepthPoint], ident, read_gbps: float | None, commit: tuple[str, bool],
                   isa: str = "") -> list[dict]:
    """Results-store rows (pp{step} @ d{n_kv} and tg{tg} @ d{n_kv}) of a curve, one sample each, so
    `harness report` charts them with every other measurement at depth."""
    from harness.provenance import cpu_model, now_iso
    from harness.store.schema import summarize, test_name
    from harness.version import __version__
    rows = []
    for p in points:
        for n_prompt, n_gen, speed in ((p.pp, 0, p.speed_pp), (0, p.tg, p.speed_tg)):
            if not (n_prompt or n_gen) or not speed == speed:
                continue
            s = summarize([speed])
            gbps = p.bytes_per_tg_token * speed / 1e9 if n_gen and p.bytes_per_tg_token else None
            rows.append({
                **ident.columns(), "isa": isa if p.engine == OURS else "", "n_threads": p.n_threads,
                "n_ubatch": p.n_ubatch, "fdn_threshold": None, "vocab_strategy": "full", "n_prompt": n_prompt,
                "n_gen": n_gen, "n_depth": p.n_kv, "test": test_name(n_prompt, n_gen, p.n_kv),
                "avg_ts": s.avg, "median_ts": s.median, "stddev_ts": None, "min_ts": s.min, "max_ts": s.max,
                "samples_ts": [speed], "ms_per_token": 1000.0 / speed, "weight_gbps": gbps,
                "machine_read_gbps": read_gbps, "bandwidth_fraction": gbps / read_gbps if gbps and read_gbps else None,
                "peak_rss_bytes": None, "spread_ok": None, "engine": p.engine,
                "commit": commit[0] if p.engine == OURS else "", "dirty": commit[1] if p.engine == OURS else False,
                "version": __version__ if p.engine == OURS else "", "test_time": now_iso(), "cpu_info": cpu_model(),
                "engine_settings": p.settings})
    return rows
