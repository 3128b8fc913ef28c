"""`harness bench`: llama-bench-style pp / tg throughput of the native engine on one model."""
from __future__ import annotations

from harness.cli.common import add_engine_args, add_model_arg, model_path


def cmd_bench(a) -> int:
    from harness.measure.bench import BenchConfig, run_bench
    from harness.measure.grid import parse_cpus
    from harness.measure.rows import records
    from harness.model.loader import load_model
    from harness.report.bench_tables import format_csv, format_json, format_jsonl, format_markdown, format_profile
    cfg = BenchConfig(n_prompt=a.n_prompt, n_gen=a.n_gen, repetitions=a.repetitions, threads=a.threads,
                      isa=a.isa, ubatch=a.ubatch, fdn_threshold=a.fdn, n_depth=a.depth,
                      vocab_strategy=a.vocab_strategy, profile=a.profile,
                      cpus=parse_cpus(a.pin) if a.pin else None)
    cfg.check()
    with load_model(model_path(a)) as m:
        res = run_bench(m, cfg)
        recs = records(m, cfg, res)
        if a.output == "json":
            print(format_json(recs))
        elif a.output == "jsonl":
            print(format_jsonl(recs))
        elif a.output == "csv":
            print(format_csv(recs), end="")
        else:
            print(format_markdown(m, cfg, res))
            if a.profile:
                print("\n" + format_profile(res))
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("bench", help="llama-bench-style pp / tg throughput of the native engine")
    add_model_arg(s)
    s.add_argument("-p", "--n-prompt", type=int, default=512)
    s.add_argument("-n", "--n-gen", type=int, default=128)
    s.add_argument("-r", "--repetitions", type=int, default=3)
    s.add_argument("-d", "--depth", type=int, default=0,
                   help="prefill this many tokens first (untimed) and time each test from there, as llama-bench -d")
    s.add_argument("--pin", metavar="CPUS", help="pin the process and the engine's threads to CPUs, e.g. 0-1")
    s.add_argument("--profile", action="store_true", help="add a separate profiled run: time per op")
    s.add_argument("-o", "--output", default="md", choices=["md", "json", "jsonl", "csv"])
    add_engine_args(s)
    s.set_defaults(func=cmd_bench)
