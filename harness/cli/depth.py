"""`harness sweep-depth`: prompt and generation speed as one context fills (S_PP and S_TG against
N_KV), for our engine and peers, as llama-sweep-bench prints it; -o DIR stores the points as results
rows (and depth.jsonl) so `harness report DIR` charts the curves."""
from __future__ import annotations

import sys

from harness.cli.common import (add_cache_type_args, add_model_arg, add_threads_arg, check_threads, model_path,
                                nonneg_int, positive_int)
from harness.errors import BadArgumentError, HarnessError, UsageError


def cmd_sweep_depth(a) -> int:
    from harness.measure import depth_curve as dc
    from harness.measure.peers import parse_engines
    from harness.model.loader import load_model
    check_threads(a, pinned=None)
    try:
        # with --import alone nothing is measured: the file's curve is shown and stored
        engines = parse_engines(a.engine, a.peer_args) if a.engine or not a.imports else None
    except UsageError as e:
        raise BadArgumentError(str(e)) from None
    imported = []
    for f in a.imports or []:
        try:
            text = open(f, encoding="utf-8").read()
        except OSError as e:
            raise HarnessError(f"{f}: cannot be read: {e.strerror or e}") from None
        imported.append((f, dc.read_sweep_bench(text, f, a.import_engine)))
    path = model_path(a)
    with load_model(path) as m:
        try:
            dc.check_walk(a.ctx, a.step, a.n_gen, m.config.context_length)
        except UsageError as e:
            raise BadArgumentError(str(e)) from None
        from harness.model.fingerprint import identify
        ident = identify(m)
        curves: list[tuple[str, list]] = []
        failures = []
        jsonl = a.format == "jsonl"
        say = (lambda line: None) if jsonl else print
        if engines and engines.native:
            say(f"\n{dc.OURS}: {ident.model}, n_kv_max = {a.ctx}, step = {a.step}, tg = {a.n_gen}, "
                f"threads = {a.threads}, KV cache {a.cache_type_k}/{a.cache_type_v}\n\n{dc.format_header()}")
            curves.append((dc.OURS, dc.walk_ours(m, a.ctx, a.step, a.n_gen, a.threads, a.isa, a.seed,
                                                 log=say, type_k=a.cache_type_k, type_v=a.cache_type_v)))
    for f, pts in imported:
        curves.append((pts[0].engine, pts))
        say(f"\n{pts[0].engine} (imported from {f})\n\n{dc.format_header()}")
        for p in pts:
            say(dc.format_row(p))
    for peer in engines.peers if engines else ():
        try:
            pts = dc.run_peer_walk(peer.engine, peer.binary, path, a.ctx, a.step, a.n_gen, a.threads, peer.extra)
        except HarnessError as e:
            failures.append({"engine": peer.engine, "config": f"walk to {a.ctx}", "reason": str(e)})
            print(f"harness: warning: {peer.engine} could not run the walk: {e}", file=sys.stderr)
            continue
        curves.append((peer.engine, pts))
        say(f"\n{peer.engine} ({peer.binary})\n\n{dc.format_header()}")
        for p in pts:
            say(dc.format_row(p))
    points = [p for _, c in curves for p in c]
    if jsonl:
        print(dc.format_jsonl(points), end="")
    if a.output:
        _store(a, path, ident, points, failures)
    return 1 if failures and not points else 0


def _store(a, path: str, ident, points: list, failures: list) -> None:
    """The points as results rows in DIR (resume adds to it), depth.jsonl beside them."""
    import os

    from harness import native
    from harness.measure import depth_curve as dc
    from harness.measure.machine import start_run_bandwidth
    from harness.provenance import git_commit, machine_provenance
    from harness.store.results import ResultStore
    bw = start_run_bandwidth(a.threads)
    prov = machine_provenance()
    prov["sweep_depth"] = {"model": path, "ctx": a.ctx, "step": a.step, "tg": a.n_gen, "threads": a.threads}
    if failures:
        prov["peer_failures"] = failures
    with ResultStore(a.output, resume=True) as store:
        store.append(dc.points_as_rows(points, ident, bw.gbps, git_commit(), native.resolve_isa(a.isa)))
        store.write_provenance(prov)
        with open(os.path.join(store.dir, "depth.jsonl"), "a") as f:
            f.write(dc.format_jsonl(points))
    if a.format != "jsonl":
        print(f"\n{len(points)} depth points stored in {a.output}; chart them with: harness report {a.output} -o "
              f"{os.path.join(a.output, 'report')}")


def add_parsers(sub) -> None:
    s = sub.add_parser("sweep-depth", help="S_PP and S_TG as one context fills (as llama-sweep-bench), ours and "
                                           "peers'", description=__doc__)
    add_model_arg(s)
    s.add_argument("-c", "--ctx", type=positive_int, default=8192, help="context to walk (default 8192)")
    s.add_argument("--step", type=positive_int, default=512,
                   help="prompt tokens per step = the u-batch, and the depth increment (default 512)")
    s.add_argument("-n", "--n-gen", type=nonneg_int, default=128, help="tokens generated at each depth (default 128)")
    add_threads_arg(s)
    s.add_argument("--isa", default="auto", help="our engine's ISA variant (default auto)")
    s.add_argument("--seed", type=nonneg_int, default=0)
    add_cache_type_args(s)
    s.add_argument("--engine", metavar="LIST", help="native (default), llama-bench=PATH (one -d per depth), "
                   "ik=PATH (ik_llama.cpp's llama-sweep-bench, or its llama-bench)")
    s.add_argument("--peer-args", action="append", metavar="NAME=ARGS", help="extra flags for a peer, e.g. 'ik=-rtr 1'")
    s.add_argument("--import", dest="imports", action="append", metavar="FILE.jsonl",
                   help="a llama-sweep-bench --output-format jsonl file measured on MODEL: shown and stored beside "
                        "what is measured (nothing is measured unless --engine is given too); repeatable")
    s.add_argument("--import-engine", default="ik_llama.cpp", help="the engine that wrote the imported files "
                   "(default ik_llama.cpp; a record's own engine field wins)")
    s.add_argument("--format", default="table", choices=["table", "jsonl"],
                   help="table (llama-sweep-bench's), or jsonl (its --output-format jsonl keys, plus engine)")
    s.add_argument("-o", "--output", metavar="DIR", help="also store the points as results rows in DIR")
    s.set_defaults(func=cmd_sweep_depth)
