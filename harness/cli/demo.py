"""`harness demo`: the main job on the embedded default (synthetic tiny models)."""
from __future__ import annotations

import os
import time

import numpy as np

from harness.cli.common import add_threads_arg, check_threads, positive_int, quant_list_arg


def cmd_demo(a) -> int:
    """The main job on the embedded default: synthetic tiny models made on the fly; the C engine
    checked against the float64 reference; a quick sweep (quant types x delta-net thresholds x
    u-batch sizes); an HTML report over every demo run in the output folder."""
    from harness import native
    from harness.engine.session import Session
    from harness.model.loader import load_model
    from harness.engine.reference import reference_logits
    from harness.model.synth import cached_model

    beyond = check_threads(a)           # refused (exit 2) unless --force or the default
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
             "-p", "64", "-n", "16", "-r", "3", "-t", str(a.threads), *(["--force"] if beyond else []),
             "-o", run_dir]
    print("\n$ harness " + " ".join(sweep))
    rc = a.run(sweep)
    if rc != 0:
        return rc
    runs = sorted(os.path.join(out, d) for d in os.listdir(out) if d.startswith("results-"))
    report_dir = os.path.join(out, "report")
    report = ["report", *runs, "-o", report_dir]
    print(f"\n$ harness report {out}/results-* -o {report_dir}")
    rc = a.run(report)
    if rc != 0:
        return rc
    print(f"\nresults: {run_dir}\nreport:  {os.path.join(report_dir, 'index.html')}  (open it in a browser)")
    return 0 if ok else 1


def add_parsers(sub, run) -> None:
    """run(argv) -> exit status runs another harness command (the demo runs sweep and report)."""
    from harness.model.presets import PRESETS

    s = sub.add_parser("demo", help="the default job: synthetic tiny models, a correctness check, a quick sweep "
                                    "and an HTML report")
    s.add_argument("--preset", default="tiny", choices=list(PRESETS))
    s.add_argument("--quant", default="q8_0,q4_k_m", type=quant_list_arg, help="comma list of quant types to sweep")
    s.add_argument("-n", "--n-tokens", type=positive_int, default=16, help="tokens of the correctness check")
    add_threads_arg(s)
    s.add_argument("-o", "--out", default="harness-demo", help="folder for the results and the report")
    s.set_defaults(func=cmd_demo, run=run)
