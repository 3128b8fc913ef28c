"""`harness sweep` and `harness results`: run a grid into a results directory, list what is in one."""
from __future__ import annotations

import json
import math
import shlex
import sys

from harness.cli.common import add_strict_arg, machine_warning, threads_beyond_cpus
from harness.errors import UsageError
from harness.settings import DEFAULT_FDN_THRESHOLD

SWEEP_KEYS = ("preset", "quant", "model", "isa", "threads", "ubatch", "fdn", "vocab_strategy", "type_k", "type_v",
              "depth", "pp", "tg", "repetitions", "warmup", "seed", "pin", "spread_limit", "quality")


def cmd_sweep(a) -> int:
    from harness.measure.peers import parse_engines
    from harness.measure.sweep import run_sweep
    try:
        grid, output, threads_given = sweep_grid(a)
        engines = parse_engines(a.engine, a.peer_args)
        threads_beyond_cpus(grid.threads, given=threads_given, force=a.force, pinned=grid.cpus)
    except UsageError as e:         # a bad grid is a bad argument: exit status 2
        print(f"harness: error: {e}", file=sys.stderr)
        return 2
    try:
        rep = run_sweep(grid, output, resume=a.resume, refresh_bandwidth=a.refresh_bandwidth, strict=a.strict,
                        warn=machine_warning, engines=engines)
    except KeyboardInterrupt:       # Ctrl-C: what was measured is saved; say how to measure the rest
        print(f"harness: interrupted; the finished configurations are saved in {output}; continue with: "
              f"{resume_command(a)}", file=sys.stderr)
        return 130
    print(f"{rep.measured} measured, {rep.skipped} already there, {rep.total} configurations in "
          f"{rep.directory} ({rep.seconds:.1f} s); list them with: harness results {rep.directory}")
    if rep.peer_failures:
        print(f"note: {len(rep.peer_failures)} peer configuration(s) did not run (see the warnings above and "
              f"peer_failures in {rep.directory}/provenance.json)")
    if rep.unsettled:
        print(f"note: {len(rep.unsettled)} of {rep.measured} measurements have a spread too wide to judge "
              f"(spread_ok = False); more repetitions (-r) or a quieter machine help")
    return 0


def resume_command(a) -> str:
    """The command line of this sweep with --resume, shell-quoted, from the arguments as given."""
    argv = list(getattr(a, "argv", None) or [])
    if not argv:
        return "the same command with --resume"
    return "harness " + shlex.join(argv if a.resume else [*argv, "--resume"])


def sweep_grid(a):
    """(SweepGrid, output directory, whether threads were given) from the parsed arguments and the
    --config file."""
    from harness.measure.grid import build_grid, merge, read_toml
    cli = {k: getattr(a, k) for k in SWEEP_KEYS}
    cli["model"] = ",".join(a.model) if a.model else None
    cli["profile"] = False if a.no_profile else None
    file_values = read_toml(a.config) if a.config else {}
    output = a.output or file_values.pop("output", None)
    if not output:
        raise UsageError("give the results directory with -o DIR")
    threads_given = cli["threads"] is not None or file_values.get("threads") is not None
    return build_grid(merge(file_values, cli), source=a.config or "command line"), str(output), threads_given


# ----------------------------------------------------------------------------
# harness results

MD_COLUMNS = [("model", "model"), ("isa", "isa"), ("n_threads", "t"), ("n_ubatch", "ubatch"),
              ("fdn_threshold", "fdn"), ("vocab_strategy", "vocab"), ("test", "test"), ("median_ts", "t/s"),
              ("spread", "± %"), ("ms_per_token", "ms/tok"), ("weight_gbps", "GB/s"),
              ("bandwidth_fraction", "% bw"), ("peak_rss_bytes", "RSS MiB"), ("spread_ok", "judge"),
              ("engine", "engine"), ("commit", "commit")]


def _cell(col: str, row) -> str:
    v = row.get(col)
    if col == "spread":
        med, sd = row.get("median_ts"), row.get("stddev_ts")
        return f"{100 * sd / med:.1f}" if _num(sd) and _num(med) and med else ""
    if not _num(v) and (v is None or (isinstance(v, float) and math.isnan(v))):
        return ""
    if col in ("median_ts", "ms_per_token", "weight_gbps"):
        return f"{v:.2f}"
    if col == "bandwidth_fraction":
        return f"{100 * v:.0f}"
    if col == "peak_rss_bytes":
        return f"{v / 2**20:.0f}"
    if col == "spread_ok":
        return "ok" if v is True else "too noisy" if v is False else ""
    if col == "commit":
        return str(v)[:8] + ("+" if row.get("dirty") is True else "")
    return str(v)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def format_results_md(frame) -> str:
    lines = ["| " + " | ".join(h for _, h in MD_COLUMNS) + " |",
             "|" + "|".join(" ---: " if c in ("median_ts", "ms_per_token", "weight_gbps", "spread",
                                              "bandwidth_fraction", "peak_rss_bytes") else " --- "
                            for c, _ in MD_COLUMNS) + "|"]
    for row in frame.to_dict("records"):
        lines.append("| " + " | ".join(_cell(c, row) for c, _ in MD_COLUMNS) + " |")
    return "\n".join(lines)


def cmd_results(a) -> int:
    from harness.store.results import load_many, select
    rs = load_many(a.results)
    frame = select(rs.frame, a.filter or [])     # a bad filter: ResultsFilterError, exit status 2
    if a.output == "csv":
        out = frame.copy()
        out["samples_ts"] = [json.dumps(v) for v in out["samples_ts"]]
        print(out.to_csv(index=False), end="")
    elif a.output == "json":
        print(frame.to_json(orient="records", indent=1))
    else:
        print(format_results_md(frame))
        print(f"\n{len(frame)} of {len(rs.frame)} rows" + (f" match {' '.join(a.filter)}" if a.filter else ""))
    return 0


def add_parsers(sub) -> None:
    from harness.model.presets import PRESETS
    from harness.model.synth import QUANTS
    s = sub.add_parser("sweep", help="measure a grid of configurations into a results directory",
                       description="Comma lists are grid axes. Results are saved after every configuration; "
                                   "--resume skips those already saved.")
    s.add_argument("--config", metavar="FILE.toml", help="grid from a TOML file (same keys; flags given here win)")
    s.add_argument("--preset", help=f"synthetic model(s), made and cached on first use: {','.join(PRESETS)}")
    s.add_argument("--quant", help=f"with --preset: {','.join(QUANTS)} (default q4_k_m)")
    s.add_argument("--model", action="append", metavar="PATH", help="GGUF file(s); repeatable or comma list")
    s.add_argument("--isa", help="auto,scalar,avx2,avx512,neon (default auto = best on this CPU)")
    s.add_argument("-t", "--threads", help="default 2; more than the CPUs this process may use needs --force")
    s.add_argument("--force", action="store_true",
                   help="run even with more threads than CPUs available (a warning instead of exit status 2)")
    s.add_argument("--ubatch", help="default 512")
    s.add_argument("--fdn", help=f"fused delta-net threshold(s), default {DEFAULT_FDN_THRESHOLD}")
    s.add_argument("--vocab-strategy", dest="vocab_strategy", help="full (default), requant:q8_0, screened:K, "
                                                                   "subset:N, argmax (when the engine has them)")
    s.add_argument("-ctk", "--cache-type-k", dest="type_k", help="KV cache type(s) of K: f32 (default), f16, bf16, q8_0")
    s.add_argument("-ctv", "--cache-type-v", dest="type_v", help="KV cache type(s) of V: f32 (default), f16, bf16, q8_0")
    s.add_argument("-d", "--depth", help="context depth(s) the tests start from (llama-bench -d), default 0")
    s.add_argument("-p", "--pp", help="prompt length(s), one pp test each (default 512; 0 = none)")
    s.add_argument("-n", "--tg", help="generated length(s), one tg test each (default 128; 0 = none)")
    s.add_argument("-r", "--repetitions", help="timed runs per test (default 3)")
    s.add_argument("--warmup", help="untimed runs before them (default 1)")
    s.add_argument("--seed", help="seed of the random prompt tokens (default 0)")
    s.add_argument("--pin", metavar="CPUS", help="pin the process and the engine's threads to CPUs, e.g. 0-1")
    s.add_argument("--quality", metavar="N", help="also measure accuracy (top-1, top-K recall, KL, max error) "
                   "against the F32 twin / full head over N tokens, per model and vocab strategy (quality.csv)")
    s.add_argument("--spread-limit", dest="spread_limit",
                   help="stddev/median above which a figure is flagged too noisy to judge (default 5%%)")
    s.add_argument("--no-profile", action="store_true", help="skip the separate per-op profiled run")
    s.add_argument("--refresh-bandwidth", action="store_true",
                   help="also re-take the cached read-bandwidth measurement (each sweep probes it anyway)")
    s.add_argument("--engine", metavar="LIST", help="engines to measure, interleaved per configuration: native "
                   "(ours, the default), llama-bench=PATH (llama.cpp), ik=PATH (ik_llama.cpp's llama-bench); "
                   "e.g. native,llama-bench=/opt/llama.cpp/build/bin/llama-bench")
    s.add_argument("--peer-args", action="append", metavar="NAME=ARGS",
                   help="extra flags for a peer's llama-bench, e.g. 'ik=-rtr 1 -fmoe 1' or 'llama-bench=-fa 1'; repeatable")
    add_strict_arg(s)
    s.add_argument("-o", "--output", metavar="DIR", help="results directory (results.csv, profile.csv, provenance.json)")
    s.add_argument("--resume", action="store_true", help="add to an existing directory, skipping finished configurations "
                   "(after Ctrl-C, the sweep prints its command line with --resume)")
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("results", help="list and filter the rows of results directories (or llama-bench JSON)")
    s.add_argument("results", nargs="+", metavar="DIR", help="results directory, or llama-bench .json / .jsonl")
    s.add_argument("--filter", action="append", metavar="KEY=VALUE",
                   help="keep rows where column KEY equals VALUE (comma list = any of; KEY!=VALUE excludes); repeatable")
    s.add_argument("-o", "--output", default="md", choices=["md", "csv", "json"])
    s.set_defaults(func=cmd_results)
