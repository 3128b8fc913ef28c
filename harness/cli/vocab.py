"""`harness quality` and `harness vocab-bench`: accuracy and speed of the LM head strategies. Heavy
modules are imported when a command runs."""
from __future__ import annotations

import argparse
import json

from harness.cli.text import add_prompt_args, prompt_ids, prompt_source
from harness.errors import BadArgumentError
from harness.cli.common import (ISAS, add_strategy_arg, add_threads_arg, check_threads, nonneg_int, parse_tokens,
                                positive_int, quant_arg, strategies_arg)


def low_rank_arg(text: str) -> tuple[int, float]:
    """'64:0.02' -> (64, 0.02): a rank >= 1 and a finite noise >= 0."""
    try:
        r, n = text.split(":")
        rank, noise = int(r), float(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected RANK:NOISE, e.g. 64:0.02, got {text!r}") from None
    if rank < 1 or not 0 <= noise < float("inf"):
        raise argparse.ArgumentTypeError(f"expected RANK:NOISE with RANK >= 1 and NOISE >= 0, e.g. 64:0.02, "
                                         f"got {text!r}")
    return rank, noise


def _model_path(a) -> str:
    from harness.errors import UsageError
    from harness.model.synth import cached_model
    if (a.model is None) == (a.preset is None):
        raise UsageError("give a MODEL path or --preset (synthesized on first use)")
    if a.model:
        if a.head_low_rank:
            raise UsageError("--head-low-rank goes with --preset")
        return a.model
    rank, noise = a.head_low_rank or (0, 0.0)
    return cached_model(a.preset, a.quant, head_rank=rank, head_noise=noise)


def cmd_quality(a) -> int:
    from harness.model.loader import load_model
    from harness.analysis.quality import quality_row
    from harness.measure.vocab_bench import (
        default_tokens,
        quant_label,
        resolve_reference,
        run_quality,
    )
    check_threads(a)
    with load_model(_model_path(a)) as m:
        ids = prompt_ids(a, m)
        if a.tokens and ids is not None:
            raise BadArgumentError("give --tokens FILE or a text (-p/--prompt, -f/--file), not both")
        if ids is not None:
            tokens, how = ids, f"{prompt_source(a)}: {len(ids)} tokens"
        elif a.tokens:
            tokens, how = parse_tokens("@" + a.tokens), a.tokens
        else:
            tokens, how = default_tokens(m.config.vocab_size, a.n_tokens, a.seed), f"random n={a.n_tokens} seed={a.seed}"
        ref_path = resolve_reference(m, a.reference)
        with load_model(ref_path) as ref:
            q = run_quality(m, ref, a.vocab_strategy, tokens, k=a.k, threads=a.threads, isa=a.isa)
            row = quality_row(m.name, quant_label(m), a.vocab_strategy, q, reference=f"{ref.name} "
                              f"({quant_label(ref)})", tokens=how)
    if a.output == "json":
        print(json.dumps(row, indent=2))
    elif a.output == "csv":
        import pandas as pd
        print(pd.DataFrame([row]).to_csv(index=False), end="")
    else:
        print(f"{row['model']} ({row['quant']}), vocab strategy {row['vocab_strategy']}, against "
              f"{row['reference']} with full, over {q.n_positions} positions ({how})")
        kl = (f"{q.kl_mean:.6f} mean, {q.kl_max:.6f} max over {q.kl_positions} positions" if q.kl_positions
              else "not defined (the strategy leaves logits at -inf)")
        print(f"  top-1 agreement   {q.top1_agreement:.4f}\n  top-{q.k} recall     {q.topk_recall:.4f}\n"
              f"  KL divergence     {kl}\n  max abs logit err {q.max_abs_err:.4g}")
    return 0


def cmd_vocab_bench(a) -> int:
    from harness.model.loader import load_model
    from harness.measure.vocab_bench import exactness_table, format_vocab_bench, run_vocab_bench
    check_threads(a)
    strategies = a.strategies.split(",")
    with load_model(_model_path(a)) as m:
        res = run_vocab_bench(m, strategies, n_gen=a.n_gen, repetitions=a.repetitions, threads=a.threads,
                              isa=a.isa)
        print(format_vocab_bench(m, res, a.threads))
        if a.samples:
            for r in res:
                print(f"  {r.strategy}: wall " + " ".join(f"{x:.2f}" for x in r.samples_ts) +
                      "; CPU " + " ".join(f"{x:.2f}" for x in r.cpu_samples_ts))
    if a.exactness:
        print()
        print(exactness_table())
    return 0


def _model_args(s: argparse.ArgumentParser) -> None:
    from harness.model.presets import PRESETS
    from harness.model.synth import QUANTS
    s.add_argument("model", nargs="?", help="GGUF file (or use --preset)")
    s.add_argument("--preset", choices=list(PRESETS), help="synthetic model, made and cached on first use")
    s.add_argument("--quant", default="q4_k_m", type=quant_arg, help=f"with --preset: {', '.join(QUANTS)}, optionally +GROUP=TYPE")
    s.add_argument("--head-low-rank", type=low_rank_arg, metavar="RANK:NOISE",
                   help="with --preset: an LM head of rank RANK plus noise carrying NOISE of each row's norm")
    s.add_argument("--isa", default="auto", choices=ISAS)
    add_threads_arg(s)


def add_parsers(sub) -> None:
    s = sub.add_parser("quality", help="top-1 agreement, top-K recall, KL divergence, max logit error "
                                       "against the F32/BF16 model with the full LM head")
    _model_args(s)
    s.add_argument("--reference", help="the F32 or BF16 file of the same model (default: the synthetic "
                                       "model's F32 twin, or MODEL itself when it is F32/BF16)")
    add_strategy_arg(s)
    s.add_argument("--tokens", metavar="FILE", help="token ids (spaces or commas) instead of random ones")
    add_prompt_args(s)
    s.add_argument("-n", "--n-tokens", type=positive_int, default=512, help="length of the random sequence")
    s.add_argument("--seed", type=nonneg_int, default=0)
    s.add_argument("-k", type=positive_int, default=10, help="K of the top-K recall")
    s.add_argument("-o", "--output", default="text", choices=["text", "json", "csv"])
    s.set_defaults(func=cmd_quality)

    s = sub.add_parser("vocab-bench", help="tg speed of LM head strategies, share of time in the head, "
                                           "screening candidates per token")
    _model_args(s)
    s.add_argument("-s", "--strategies", default="full,argmax,requant:q4_0,screened:10,subset:32768",
                   type=strategies_arg, help="comma-separated strategies")
    s.add_argument("-n", "--n-gen", type=positive_int, default=32)
    s.add_argument("-r", "--repetitions", type=positive_int, default=3)
    s.add_argument("--samples", action="store_true", help="also print every repetition's t/s")
    s.add_argument("--exactness", action="store_true", help="also print what each strategy is exact for")
    s.set_defaults(func=cmd_vocab_bench)
