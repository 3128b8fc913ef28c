"""The `harness` command line."""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from . import vocab_cli
from .errors import HarnessError, UsageError


def parse_tokens(text: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3]; '@file' reads whitespace/comma separated ids from a file."""
    if text.startswith("@"):
        try:
            text = open(text[1:]).read()
        except OSError as e:
            raise UsageError(f"cannot read token file {text[1:]!r}: {e.strerror}") from None
    try:
        toks = [int(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise UsageError(f"tokens must be integers separated by commas, got {text[:40]!r}") from None
    if not toks:
        raise UsageError("no tokens given")
    return toks


def cmd_info(a) -> int:
    from .model import load_model
    from .report_text import model_info
    with load_model(a.model) as m:
        print(model_info(m, tensors=not a.no_tensors))
    return 0


def cmd_synth(a) -> int:
    from .synth import synthesize

    last = [0.0]

    def progress(done, total):
        now = time.perf_counter()
        if now - last[0] > 1.0 or done == total:
            last[0] = now
            print(f"\r  {done / 2**20:9.1f} / {total / 2**20:.1f} MiB", end="", file=sys.stderr, flush=True)

    r = synthesize(a.preset, a.quant, a.output, seed=a.seed, threads=a.threads,
                   progress=progress if sys.stderr.isatty() else None)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"wrote {r.path}: {r.bytes / 2**20:.1f} MiB of weights in {r.seconds:.1f} s")
    return 0


def cmd_logits(a) -> int:
    from .model import load_model
    tokens = parse_tokens(a.tokens)
    with load_model(a.model) as m:
        if a.engine == "reference":
            from .reference import reference_logits
            logits = reference_logits(m, tokens, mode=a.mode).astype(np.float32)
        else:
            from .engine import Session
            with Session(m, isa=a.isa, threads=a.threads, ubatch=a.ubatch, fdn_threshold=a.fdn,
                         ctx=max(len(tokens), 1), vocab_strategy=a.vocab_strategy) as s:
                if a.mode == "prefill":
                    logits = s.prefill(tokens)
                else:
                    logits = np.stack([s.decode(t) for t in tokens])
    np.save(a.out, logits)
    print(f"wrote {a.out}: float32 {list(logits.shape)} ({a.engine}, {a.mode})")
    return 0


def cmd_bench(a) -> int:
    from .bench import BenchConfig, format_csv, format_json, format_markdown, format_profile, records, run_bench
    from .grid import parse_cpus
    from .model import load_model
    from .synth import cached_model
    if (a.model is None) == (a.preset is None):
        raise UsageError("give a MODEL path or --preset (synthesized on first use)")
    cfg = BenchConfig(n_prompt=a.n_prompt, n_gen=a.n_gen, repetitions=a.repetitions, threads=a.threads,
                      isa=a.isa, ubatch=a.ubatch, fdn_threshold=a.fdn, n_depth=a.depth,
                      vocab_strategy=a.vocab_strategy, profile=a.profile,
                      cpus=parse_cpus(a.pin) if a.pin else None)
    cfg.check()
    path = a.model or cached_model(a.preset, a.quant)
    with load_model(path) as m:
        res = run_bench(m, cfg)
        recs = records(m, cfg, res)
        if a.output == "json":
            print(format_json(recs))
        elif a.output == "csv":
            print(format_csv(recs), end="")
        else:
            print(format_markdown(m, cfg, res))
            if a.profile:
                print("\n" + format_profile(res))
    return 0


def cmd_demo(a) -> int:
    """The main job on the embedded default: synthetic tiny models made on the fly; the C engine
    checked against the float64 reference; a quick sweep (quant types x delta-net thresholds x
    u-batch sizes); an HTML report over every demo run in the output folder."""
    from . import native
    from .engine import Session
    from .model import load_model
    from .reference import reference_logits
    from .synth import cached_model

    feats = native.cpu_features()
    print(f"cpu: ISA variants compiled {feats['compiled']}, runnable {feats['supported']}, best {feats['best']}")
    quants = a.quant.split(",")
    t0 = time.perf_counter()
    path = cached_model(a.preset, quants[0], seed=0)
    print(f"synthetic model: {path} ({time.perf_counter() - t0:.1f} s)")

    # 1. correctness: the same model with F32 weights against the float64 reference
    with load_model(cached_model(a.preset, "f32", seed=0)) as mf:
        tokens = [int(t) for t in np.random.default_rng(0).integers(0, mf.config.vocab_size, a.n_tokens)]
        with Session(mf, threads=a.threads, ctx=len(tokens)) as sf:
            pre = sf.prefill(tokens)
            sf.reset()
            dec = np.stack([sf.decode(t) for t in tokens])
        ref = reference_logits(mf, tokens)
    err_pre, err_dec = float(np.abs(pre - ref).max()), float(np.abs(dec - ref).max())
    ok = err_pre < 2e-3 and err_dec < 2e-3
    print(f"check: {len(tokens)} tokens, F32 weights, max |engine - float64 reference| = {err_pre:.1e} (prefill), "
          f"{err_dec:.1e} (decode): {'ok' if ok else 'FAILED'}")

    # 2. a quick sweep into a new results folder, 3. a report over all demo runs
    out = os.path.abspath(a.out)
    run_dir = os.path.join(out, "results-" + time.strftime("%Y%m%d-%H%M%S"))
    sweep = ["sweep", "--preset", a.preset, "--quant", a.quant, "--fdn", "0,16", "--ubatch", "16,64",
             "-p", "64", "-n", "16", "-r", "3", "-t", str(a.threads), "-o", run_dir]
    print("\n$ harness " + " ".join(sweep))
    rc = main(sweep)
    if rc != 0:
        return rc
    runs = sorted(os.path.join(out, d) for d in os.listdir(out) if d.startswith("results-"))
    report_dir = os.path.join(out, "report")
    report = ["report", *runs, "-o", report_dir]
    print(f"\n$ harness report {out}/results-* -o {report_dir}")
    rc = main(report)
    if rc != 0:
        return rc
    print(f"\nresults: {run_dir}\nreport:  {os.path.join(report_dir, 'index.html')}  (open it in a browser)")
    return 0 if ok else 1


def _engine_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--isa", default="auto", choices=["auto", "scalar", "avx2", "avx512", "neon"])
    s.add_argument("-t", "--threads", type=int, default=2)
    s.add_argument("--ubatch", type=int, default=512)
    s.add_argument("--fdn", type=int, default=512,
                   help="u-batches of at most this many tokens use the fused delta-net, larger ones chunked")
    vocab_cli.add_strategy_arg(s)


def build_parser() -> argparse.ArgumentParser:
    from .synth import QUANTS
    from .presets import PRESETS

    p = argparse.ArgumentParser(prog="harness", description="Measure and speed up Qwen3.5 inference on CPUs.")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("demo", help="the default job: synthetic tiny models, a correctness check, a quick sweep "
                                    "and an HTML report")
    s.add_argument("--preset", default="tiny", choices=list(PRESETS))
    s.add_argument("--quant", default="q8_0,q4_k_m", help="comma list of quant types to sweep")
    s.add_argument("-n", "--n-tokens", type=int, default=16, help="tokens of the correctness check")
    s.add_argument("-t", "--threads", type=int, default=2)
    s.add_argument("-o", "--out", default="harness-demo", help="folder for the results and the report")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("info", help="config, layer kinds, tensor table and bytes per token of a GGUF")
    s.add_argument("model")
    s.add_argument("--no-tensors", action="store_true", help="leave out the tensor table")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("synth", help="write a GGUF with real Qwen3.5 shapes and seeded random weights")
    s.add_argument("--preset", required=True, choices=list(PRESETS))
    s.add_argument("--quant", required=True, choices=QUANTS)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-o", "--output", required=True)
    s.add_argument("-t", "--threads", type=int, default=None, help="quantization threads (default: all cores)")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("logits", help="logits of a token sequence, saved as float32 [n_tokens, n_vocab]")
    s.add_argument("model")
    s.add_argument("--tokens", required=True, help="comma-separated ids, or @FILE")
    s.add_argument("--engine", default="native", choices=["native", "reference"],
                   help="native = the C engine; reference = float64 numpy")
    s.add_argument("--mode", default="prefill", choices=["prefill", "decode"])
    _engine_args(s)
    s.add_argument("--out", required=True, help="output .npy")
    s.set_defaults(func=cmd_logits)

    s = sub.add_parser("bench", help="llama-bench-style pp / tg throughput of the native engine")
    s.add_argument("model", nargs="?", help="GGUF file (or use --preset)")
    s.add_argument("--preset", choices=list(PRESETS), help="synthetic model, made and cached on first use")
    s.add_argument("--quant", default="q4_k_m", choices=QUANTS, help="with --preset")
    s.add_argument("-p", "--n-prompt", type=int, default=512)
    s.add_argument("-n", "--n-gen", type=int, default=128)
    s.add_argument("-r", "--repetitions", type=int, default=3)
    s.add_argument("-d", "--depth", type=int, default=0,
                   help="prefill this many tokens first (untimed) and time each test from there, as llama-bench -d")
    s.add_argument("--pin", metavar="CPUS", help="pin the process and the engine's threads to CPUs, e.g. 0-1")
    s.add_argument("--profile", action="store_true", help="add a separate profiled run: time per op")
    s.add_argument("-o", "--output", default="md", choices=["md", "json", "csv"])
    _engine_args(s)
    s.set_defaults(func=cmd_bench)

    from . import cli_bisect, cli_report, cli_selftest, cli_sweep
    cli_sweep.add_parsers(sub)
    cli_report.add_parsers(sub)
    cli_selftest.add_parsers(sub)
    cli_bisect.add_parsers(sub)
    vocab_cli.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the machine's fault, not ours: a missing directory, a full disk, ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"harness: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: one line unless asked for the traceback
        if os.environ.get("HARNESS_DEBUG"):
            raise
        print(f"harness: internal error: {type(e).__name__}: {e} (set HARNESS_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
