"""What several commands share: token lists, the engine options (ISA, threads, u-batch, delta-net
threshold, vocab strategy) and the model argument (a GGUF path or a synthetic preset)."""
from __future__ import annotations

import argparse

from harness.errors import UsageError

ISAS = ["auto", "scalar", "avx2", "avx512", "neon"]


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


STRATEGY_HELP = ("LM head strategy: full, requant:TYPE, subset:N, subset:@FILE, screened:K[:q8_0|q4_0|rankR], "
                 "argmax (entries a strategy does not compute are -inf)")


def strategy_arg(text: str) -> str:
    """argparse type: the strategy's syntax is checked when the arguments are parsed (exit 2)."""
    from harness.engine.vocab import parse_strategy
    try:
        parse_strategy(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_strategy_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vocab-strategy", default="full", type=strategy_arg, metavar="S", help=STRATEGY_HELP)


def add_engine_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--isa", default="auto", choices=ISAS)
    s.add_argument("-t", "--threads", type=int, default=2)
    s.add_argument("--ubatch", type=int, default=512)
    s.add_argument("--fdn", type=int, default=512,
                   help="u-batches of at most this many tokens use the fused delta-net, larger ones chunked")
    add_strategy_arg(s)


def add_model_arg(s: argparse.ArgumentParser) -> None:
    """MODEL (a GGUF path) or --preset P --quant Q (a synthetic model, made and cached on first use)."""
    from harness.model.presets import PRESETS
    from harness.model.synth import QUANTS
    s.add_argument("model", nargs="?", help="GGUF file (or use --preset)")
    s.add_argument("--preset", choices=list(PRESETS), help="synthetic model, made and cached on first use")
    s.add_argument("--quant", default="q4_k_m", choices=QUANTS, help="with --preset")


def model_path(a) -> str:
    """The GGUF path of MODEL or of the cached synthetic --preset / --quant model."""
    from harness.model.synth import cached_model
    if (a.model is None) == (a.preset is None):
        raise UsageError("give a MODEL path or --preset (synthesized on first use)")
    return a.model or cached_model(a.preset, a.quant)
