"""`harness bench`: llama-bench-style pp / tg throughput of the native engine on one model."""
from __future__ import annotations

from harness.cli.common import (add_engine_args, add_model_arg, add_strict_arg, check_threads, cpus_arg,
                                machine_warning, model_path, nonneg_int, positive_int)
from harness.cli.text import add_prompt_args, prompt_ids, prompt_source
from harness.errors import BadArgumentError, UsageError


def cmd_bench(a) -> int:
    from harness.measure.bench import BenchConfig, run_bench
    from harness.measure.rows import records
    from harness.measure.system_state import judge_machine, system_state, throttled_between, warn_reasons
    from harness.model.loader import load_model
    from harness.report.bench_tables import (format_csv, format_engines_md, format_json, format_jsonl,
                                             format_markdown, format_profile, format_sql)
    from harness.measure.peers import parse_engines
    check_threads(a, pinned=a.pin)
    try:
        engines = parse_engines(a.engine, a.peer_args)
    except UsageError as e:
        raise BadArgumentError(str(e)) from None
    if not engines.native:
        raise BadArgumentError("bench --engine: include native (bench measures ours; peers run beside it)")
    ids = None
    if a.prompt is not None or a.file is not None:
        with load_model(model_path(a)) as m:   # a text's ids need the file's tokenizer
            ids = prompt_ids(a, m)
    n_prompt = a.n_prompt if a.n_prompt is not None else (len(ids) if ids else 512)
    cfg = BenchConfig(n_prompt=n_prompt, n_gen=a.n_gen, repetitions=a.repetitions, threads=a.threads,
                      isa=a.isa, ubatch=a.ubatch, fdn_threshold=a.fdn, n_depth=a.depth,
                      vocab_strategy=a.vocab_strategy, profile=a.profile, cpus=a.pin,
                      type_k=a.cache_type_k, type_v=a.cache_type_v, repack=a.repack,
                      prompt_ids=tuple(ids or ()), prompt_source=prompt_source(a))
    cfg.refresh_bandwidth = a.refresh_bandwidth
    try:
        cfg.check()
    except UsageError as e:         # e.g. nothing to measure (-p 0 -n 0): a bad argument
        raise BadArgumentError(str(e)) from None
    with load_model(model_path(a)) as m:   # a bad model file fails before the machine is judged
        # --strict refuses here; the warnings wait until the engine has taken the configuration, so
        # that what it refuses is still one line
        start, reasons = judge_machine(cfg.spread_limit, cfg.threads, a.strict, cpus=a.pin)
        from harness.report.model_info import no_kernel_types
        if no_kernel_types(m):
            machine_warning(f"no C kernels yet for {', '.join(no_kernel_types(m))}: those tensors run dequantized "
                            f"to F32, so these figures are not the speed of the file's types")
        res = run_bench(m, cfg, ready=lambda: warn_reasons(reasons, machine_warning))
        for note in dict.fromkeys(r.extra.get("repack_note") for r in res if r.extra.get("repack_note")):
            machine_warning(note)
        end = system_state(cpus=a.pin)
        for reason in throttled_between(start, end):
            machine_warning(reason)
        recs = records(m, cfg, res, states=(start, end))
        peer_recs = _peer_records(engines, m.path, cfg)
        if a.output != "md":
            recs = recs + peer_recs
        if a.output == "json":
            print(format_json(recs))
        elif a.output == "jsonl":
            print(format_jsonl(recs))
        elif a.output == "csv":
            print(format_csv(recs), end="")
        elif a.output == "sql":
            print(format_sql(recs), end="")
        else:
            print(format_markdown(m, cfg, res))
            if peer_recs:
                print("\n" + format_engines_md(recs, peer_recs))
            if a.profile:
                print("\n" + format_profile(res))
    return 0


def _peer_records(engines, model: str, cfg) -> list[dict]:
    """Each peer's llama-bench records for bench's tests, right after ours (engine named in each);
    a peer that fails is one warning line, not an error: ours were measured."""
    from harness.cli.common import machine_warning
    from harness.errors import HarnessError
    from harness.measure.peers import peer_command, run_peer
    tests = [t for t in ((cfg.n_prompt, 0), (0, cfg.n_gen)) if t[0] or t[1]]
    out = []
    for peer in engines.peers:
        cmd = peer_command(peer, model, cfg.threads, cfg.ubatch, cfg.n_depth, tests, cfg.repetitions)
        try:
            out += [dict(r, engine=peer.engine) for r in run_peer(peer, cmd)]
        except HarnessError as e:
            machine_warning(f"{peer.engine} could not run this configuration: {e}")
    return out


def add_parsers(sub) -> None:
    s = sub.add_parser("bench", help="llama-bench-style pp / tg throughput of the native engine")
    add_model_arg(s)
    s.add_argument("-p", "--n-prompt", type=nonneg_int, default=None,
                   help="prompt length of the pp test (default 512, or the whole --prompt/--file text)")
    add_prompt_args(s, short=False)
    s.add_argument("-n", "--n-gen", type=nonneg_int, default=128)
    s.add_argument("-r", "--repetitions", type=positive_int, default=3)
    s.add_argument("-d", "--depth", type=nonneg_int, default=0,
                   help="prefill this many tokens first (untimed) and time each test from there, as llama-bench -d")
    s.add_argument("--pin", metavar="CPUS", type=cpus_arg,
                   help="pin the process and the engine's threads to CPUs, e.g. 0-1")
    s.add_argument("--profile", action="store_true", help="add a separate profiled run: time per op")
    s.add_argument("--refresh-bandwidth", action="store_true",
                   help="also re-take the cached read-bandwidth measurement (each run probes it anyway)")
    s.add_argument("-o", "--output", default="md", choices=["md", "json", "jsonl", "csv", "sql"],
                   help="md (default); json, jsonl, csv, sql: llama-bench's formats with every llama-bench field "
                        "(sql: pipe into sqlite3 beside llama-bench's)")
    s.add_argument("--engine", metavar="LIST", help="native (default) plus peers run right after it on the same "
                   "file and flags: llama-bench=PATH (llama.cpp), ik=PATH (ik_llama.cpp)")
    s.add_argument("--peer-args", action="append", metavar="NAME=ARGS", help="extra flags for a peer, e.g. 'ik=-rtr 1'")
    add_strict_arg(s)
    add_engine_args(s)
    s.set_defaults(func=cmd_bench)
