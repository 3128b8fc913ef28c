"""Run a grid of measurements into a results directory, one configuration at a time.

Before anything is measured: every model is made (synthetic presets, cached) and identified,
every ISA is resolved on this CPU, every vocab strategy is tried on the engine, the pinned CPUs
are checked, and the results directory is locked and checked. Then each finished measurement
(one point x one test) is appended to the store at once (atomic rename), so a sweep killed at
any moment loses at most the measurement it was running, and `resume=True` skips every
configuration already in the store. The read bandwidth (the roofline's reference) is probed for
each thread count at the start of the sweep and again at its end (provenance.json,
machine_read_bandwidth); rows use the start probe. The machine's state (system_state: load, other
busy processes, governor, boost, clock, throttle counters) is read and judged against the spread
limit before anything is made or locked (judge_machine: under strict, a refusal), its warnings
are given once the checks above have passed (so that their errors stay one line), and it is read
again at the end; both states go to provenance.json (system_state).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from dataclasses import dataclass, field, replace

from harness import native
from harness.atomic import atomic_write_text
from harness.measure.bench import (BenchConfig, check_vocab_strategy_supported, iter_bench, pinned, session_kwargs,
                                   test_name)
from harness.errors import HarnessError, UsageError
from harness.model.fingerprint import ModelIdentity, identify
from harness.measure.grid import ModelSource, SweepGrid
from harness.measure.peers import EngineChoice, PeerEngine, PeerFailure, peer_command, run_peer
from harness.model.loader import load_model
from harness.provenance import machine_provenance
from harness.store.llama_bench_format import our_settings_text, settings_labels
from harness.store.results import ResultStore
from harness.store.schema import config_id
from harness.measure.rows import profile_rows, result_row
from harness.measure.rss import METHOD_PROCESS, METHOD_RESET, reset_peak
from harness.measure.system_state import judge_machine, run_states, system_state, throttled_between, warn_reasons


@dataclass
class SweepReport:
    directory: str
    measured: int
    skipped: int
    total: int
    seconds: float
    unsettled: list[str]      # config ids whose spread was too wide to judge
    busy: list[str] = field(default_factory=list)   # config ids measured on a busy machine
    peer_failures: list[dict] = field(default_factory=list)   # peer configurations that did not run


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _planned_id(ident: ModelIdentity, cfg: BenchConfig, n_prompt: int, n_gen: int) -> str:
    return config_id({"model_hash": ident.model_hash, "isa": cfg.isa, "n_threads": cfg.threads,
                      "n_ubatch": cfg.ubatch, "fdn_threshold": cfg.fdn_threshold,
                      "vocab_strategy": cfg.vocab_strategy, "n_prompt": n_prompt, "n_gen": n_gen,
                      "n_depth": cfg.n_depth, "test": test_name(n_prompt, n_gen, cfg.n_depth),
                      "engine_settings": our_settings_text(cfg.type_k, cfg.type_v)})


def prepare_models(models: list[ModelSource], log: Callable[[str], None]) -> dict[ModelSource, tuple[str, ModelIdentity]]:
    """Make (or find in the cache) and identify every model; a bad file fails here, before any timing."""
    from harness.model.synth import cached_model_path
    out = {}
    for src in models:
        if not src.path and not cached_model_path(src.preset, src.quant).exists():
            log(f"model {src.label}: synthesizing (cached for next time) ...")
        path = src.resolve()
        with load_model(path) as m:
            out[src] = (path, identify(m))
    return out


def check_cpu_options(grid: SweepGrid) -> dict[str, str]:
    """ISA names resolved on this CPU ('auto' -> the best one); UsageError for a variant this CPU or
    build cannot run, or for pinned CPUs this process may not use."""
    resolved = {isa: native.resolve_isa(isa) for isa in grid.isa}
    if grid.cpus and hasattr(os, "sched_getaffinity"):
        allowed = os.sched_getaffinity(0)
        bad = sorted(set(grid.cpus) - allowed)
        if bad:
            raise UsageError(f"pin: CPU(s) {bad} are not available to this process (allowed: {sorted(allowed)})")
    return resolved


def check_vocab_strategies(strategies: list[str], model_path: str, isa: str) -> None:
    """Every strategy other than 'full' must be known to the engine: a session is made with each."""
    strategies = [v for v in strategies if v != "full"]
    if not strategies:
        return
    from harness.engine.session import Session
    with load_model(model_path) as m:
        for v in strategies:
            check_vocab_strategy_supported(v)
            cfg = BenchConfig(vocab_strategy=v, isa=isa, threads=1, ubatch=1)
            try:
                Session(m, **session_kwargs(cfg, ctx=1)).close()
            except TypeError as e:
                raise UsageError(f"vocab strategy {v!r} is not accepted by the engine: {e}") from None


def _rewrite_last_run(directory: str, prov: dict) -> None:
    """Replace this run's provenance (the last of 'runs', and the top level) with `prov`, as
    ResultStore.write_provenance laid it out: used to add what is known only at the end."""
    path = os.path.join(directory, "provenance.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return
    runs = data.get("runs") or [{}]
    runs[-1] = prov
    created = data.get("created", prov.get("created"))
    data.update(prov)
    data["created"], data["runs"] = created, runs
    atomic_write_text(path, json.dumps(data, indent=1, default=str))


def run_sweep(grid: SweepGrid, out_dir: str, resume: bool = False,
              log: Callable[[str], None] = _stderr, refresh_bandwidth: bool = False, strict: bool = False,
              warn: Callable[[str], None] | None = None, engines: EngineChoice | None = None) -> SweepReport:
    """Measure `grid` into `out_dir` (see the module docstring). strict: refuse to measure
    (MachineNotQuietError) when the machine is not quiet enough to resolve a change of the spread
    limit; warn: where the reasons of that check go otherwise (default: log, as warnings);
    engines: ours and/or peer llama-bench binaries (harness.measure.peers), default ours only."""
    engines = engines or EngineChoice()
    t_start = time.perf_counter()
    warn = warn or (lambda reason: log(f"warning: {reason}"))
    isas = check_cpu_options(grid)
    for v in grid.vocab_strategy:
        check_vocab_strategy_supported(v)
    tests = grid.tests()
    threads = max(grid.threads)
    state_start, reasons = judge_machine(grid.spread_limit, threads, strict, cpus=grid.cpus)

    with ResultStore(out_dir, resume=resume) as store:      # locked and checked before any work
        if store.stale_lock:
            h = store.stale_lock
            log(f"note: took over the lock of a finished or killed writer (pid {h.get('pid')} on {h.get('host')}, "
                f"since {h.get('since')}): the kernel had released it")
        if store.removed_temps:
            log(f"note: removed unfinished temporary file(s) {', '.join(store.removed_temps)}")
        models = prepare_models(grid.models, log)
        check_vocab_strategies(grid.vocab_strategy, next(iter(models.values()))[0], next(iter(isas.values())))
        warn_reasons(reasons, warn)
        from harness.measure.machine import start_run_bandwidth
        with pinned(grid.cpus):
            bandwidth = {t: start_run_bandwidth(t, refresh=refresh_bandwidth) for t in sorted(set(grid.threads))}
        prov = machine_provenance()
        prov["peak_rss_method"] = METHOD_RESET if reset_peak() else METHOD_PROCESS
        prov["machine_read_bandwidth"] = {str(t): b.as_dict() for t, b in bandwidth.items()}
        prov["models"] = {ident.model_hash: ident.as_dict() for _, ident in models.values()}
        prov["grid"] = {"tests": [test_name(p, g) for p, g in tests], "repetitions": grid.repetitions,
                        "warmup": grid.warmup, "seed": grid.seed, "profile": grid.profile,
                        "cpus": list(grid.cpus) if grid.cpus else None, "spread_limit": grid.spread_limit}
        prov["system_state"] = run_states(state_start, None, grid.spread_limit, threads)
        store.write_provenance(prov)

        plan = []
        for src, cfg in grid.points():
            path, ident = models[src]
            cfg = replace(cfg, isa=isas[cfg.isa])
            todo = [t for t in tests if _planned_id(ident, cfg, *t) not in store.done_ids]
            plan.append((path, ident, cfg, todo))
        if not engines.native:
            plan = [(path, ident, cfg, []) for path, ident, cfg, _ in plan]
        peer_plan = _peer_plan(plan, engines, store, tests)
        total = (len(plan) * len(tests) if engines.native else 0) + len(peer_plan) * len(tests)
        todo_n = sum(len(p[3]) for p in plan) + sum(len(tests) for *_, done in peer_plan if not done)
        skipped = total - todo_n
        if skipped:
            log(f"resume: {skipped} of {total} configurations already in {out_dir}, {todo_n} to measure")
        done, unsettled, busy, t_meas = 0, [], [], time.perf_counter()
        failures: list[PeerFailure] = []
        commit = prov["commit"], prov["dirty"]
        peers_after: dict[int, list] = {}          # plan index -> the peer configurations run after it
        for entry in peer_plan:
            peers_after.setdefault(entry[0], []).append(entry)
        for i, (path, ident, cfg, todo) in enumerate(plan):
            if todo:
                with load_model(path) as m:
                    for r in iter_bench(m, cfg, todo):
                        r.extra["read_gbps"] = bandwidth[cfg.threads].gbps
                        row = result_row(ident, cfg, r, commit)
                        store.append([row], profile_rows(row["config_id"], r))
                        done += 1
                        if not row["spread_ok"]:
                            unsettled.append(row["config_id"])
                        if row["machine_busy"]:
                            busy.append(row["config_id"])
                        log(_progress_line(skipped + done, total, done, todo_n, time.perf_counter() - t_meas,
                                           ident, cfg, r, row))
            for _, peer, (ppath, pident, pcfg), already in peers_after.get(i, []):
                if already:
                    continue
                rows = _run_peer_config(peer, ppath, pident, pcfg, tests, grid, bandwidth, failures, log)
                if rows:
                    store.append(rows)
                    done += len(tests)
                    unsettled += [config_id(r) for r in rows if not r["spread_ok"]]
                    labels, _ = settings_labels([r["engine_settings"] for r in rows])
                    for r, label in zip(rows, labels):
                        log(f"[{skipped + done}/{total}] {peer.engine}{f' ({label})' if label else ''} "
                            f"{pident.model} t{pcfg.threads} "
                            f"ub{pcfg.ubatch}{f' d{pcfg.n_depth}' if pcfg.n_depth else ''} {r['test']}: "
                            f"{r['median_ts']:.1f} t/s (elapsed {time.perf_counter() - t_meas:.0f} s)")
        if failures:
            prov["peer_failures"] = [f.as_dict() for f in failures]
        if engines.peers:
            prov["peer_engines"] = [{"engine": p.engine, "binary": p.binary, "args": list(p.extra)}
                                    for p in engines.peers]
        if grid.quality:
            store.write_quality(_quality_frame(grid, models, store, isas, log))
        with pinned(grid.cpus):
            for b in bandwidth.values():
                b.finish()
        prov["machine_read_bandwidth"] = {str(t): b.as_dict() for t, b in bandwidth.items()}
        state_end = system_state(cpus=grid.cpus)
        for reason in throttled_between(state_start, state_end):
            warn(reason)
        prov["system_state"] = run_states(state_start, state_end, grid.spread_limit, threads)
        _rewrite_last_run(store.dir, prov)
        if busy:
            log(f"note: {len(busy)} of {done} measurements ran on a busy machine (machine_busy = True, "
                f"see busy_note): compare calls none of them slower or faster")
    return SweepReport(str(out_dir), done, skipped, total, time.perf_counter() - t_start, unsettled, busy,
                       [f.as_dict() for f in failures])


def _peer_plan(plan: list, engines: EngineChoice, store, tests: list) -> list:
    """(index of the point it follows, peer, (path, ident, config), already measured) for every peer
    configuration: one per (model, threads, u-batch, depth), after the first point that has it."""
    out, seen = [], set()
    frame = store.frame
    for i, (path, ident, cfg, _) in enumerate(plan):
        key = (path, cfg.threads, cfg.ubatch, cfg.n_depth)
        if key in seen:
            continue
        seen.add(key)
        for peer in engines.peers:
            have = frame[(frame["engine"] == peer.engine) & (frame["model_hash"] == ident.model_hash)
                         & (frame["n_threads"].astype(float) == cfg.threads)
                         & (frame["n_ubatch"].astype(float) == cfg.ubatch)
                         & (frame["n_depth"].astype(float) == cfg.n_depth)] if len(frame) else frame
            already = {test_name(p, g, cfg.n_depth) for p, g in tests} <= set(have["test"]) if len(have) else False
            out.append((i, peer, (path, ident, cfg), already))
    return out


def _run_peer_config(peer: PeerEngine, path: str, ident: ModelIdentity, cfg: BenchConfig, tests: list,
                     grid: SweepGrid, bandwidth: dict, failures: list, log: Callable[[str], None]) -> list[dict]:
    """One peer configuration: its llama-bench run, its records as store rows (with this sweep's
    read bandwidth), or a PeerFailure logged and kept."""
    from harness.store.llama_bench import llama_rows
    cmd = peer_command(peer, path, cfg.threads, cfg.ubatch, cfg.n_depth, tests, grid.repetitions)
    what = (f"{ident.model} t{cfg.threads} ub{cfg.ubatch} d{cfg.n_depth} "
            f"{','.join(test_name(p, g, cfg.n_depth) for p, g in tests)}")
    try:
        with pinned(grid.cpus):
            recs = run_peer(peer, cmd)
    except HarnessError as e:
        failures.append(PeerFailure(peer.engine, what, str(e)))
        log(f"warning: {peer.engine} could not run {what}: {e}")
        return []
    known = {str(r["model_filename"]): (ident.model_hash, ident.bytes_per_token) for r in recs}
    rows = llama_rows(recs, Path(path).parent, engine=peer.engine, known=known)
    read = bandwidth[cfg.threads].gbps
    for row in rows:               # the same model names as our rows, so tables and charts pair them
        row.update(model=ident.model, model_preset=ident.model_preset, quant=ident.quant or row["quant"])
        row["machine_read_gbps"] = read
        if row["weight_gbps"] and read:
            row["bandwidth_fraction"] = row["weight_gbps"] / read
    missing = {test_name(p, g, cfg.n_depth) for p, g in tests} - {r["test"] for r in rows}
    if missing:
        failures.append(PeerFailure(peer.engine, what, f"no record for {', '.join(sorted(missing))}"))
        log(f"warning: {peer.engine} gave no record for {', '.join(sorted(missing))} of {what}")
    return rows


def _quality_frame(grid: SweepGrid, models: dict, store, isas: dict, log: Callable[[str], None]):
    """quality.csv: one row per (model, vocab strategy) against the model's F32 twin (synthetic) or
    itself (F32/BF16 files) with the full head, over grid.quality seeded random tokens; rows already in
    the store (resume) are kept."""
    import pandas as pd

    from harness.analysis.quality import quality_row
    from harness.measure.vocab_bench import default_tokens, resolve_reference, run_quality_strategies
    qpath = os.path.join(store.dir, "quality.csv")
    rows = pd.read_csv(qpath).to_dict("records") if os.path.exists(qpath) else []
    have = {(r["model"], r["vocab_strategy"]) for r in rows}
    isa = next(iter(isas.values()))
    for path, ident in models.values():
        todo = [v for v in grid.vocab_strategy if (ident.model, v) not in have]
        if not todo:
            continue
        with load_model(path) as m:
            ref_path = resolve_reference(m, None)
            toks = default_tokens(m.config.vocab_size, grid.quality, grid.seed)
            with load_model(ref_path) as ref:
                measures = run_quality_strategies(m, ref, todo, toks, threads=max(grid.threads), isa=isa)
        for v, q in zip(todo, measures):
            rows.append(quality_row(ident.model, ident.quant, v, q, reference=os.path.basename(ref_path),
                                    tokens=f"{grid.quality} seeded random ids (seed {grid.seed})"))
            log(f"quality {ident.model} {v}: top-1 {q.top1_agreement:.3f}, KL {q.kl_mean:.2e}, "
                f"max |err| {q.max_abs_err:.3f}")
    return pd.DataFrame(rows)


def _kv_label(cfg: BenchConfig) -> str:
    """' kv f16/f16' for a KV cache other than our default F32, else ''."""
    return "" if (cfg.type_k, cfg.type_v) == ("f32", "f32") else f" kv {cfg.type_k}/{cfg.type_v}"


def _progress_line(pos: int, total: int, done: int, todo: int, elapsed: float, ident: ModelIdentity,
                   cfg: BenchConfig, r, row: dict) -> str:
    eta = elapsed / done * (todo - done)
    spread = r.summary.spread
    sp = "±?" if math.isnan(spread) else f"±{100 * spread:.1f}%"
    warn = "" if row["spread_ok"] else "  [spread too wide to judge]"
    warn += "  [machine busy]" if row["machine_busy"] else ""
    return (f"[{pos}/{total}] {ident.model} {cfg.isa} t{cfg.threads} ub{cfg.ubatch} fdn{cfg.fdn_threshold} "
            f"{cfg.vocab_strategy}{_kv_label(cfg)} {r.test}: {row['median_ts']:.1f} t/s {sp}{warn}  "
            f"(elapsed {elapsed:.0f} s, ETA {eta:.0f} s)")
