"""What several commands share: the parser whose errors are one line, argument types that refuse
bad values when the arguments are parsed (exit status 2), token lists, the engine options (ISA,
threads, u-batch, delta-net threshold, vocab strategy), the check of threads against the CPUs this
process may use, the model argument (a GGUF path or a synthetic preset), and --strict with the
warnings of the machine-state check before measuring."""
from __future__ import annotations

import argparse
import contextlib
import sys

from harness.errors import BadArgumentError, UsageError
from harness.ggml_types import CACHE_TYPES
from harness.settings import DEFAULT_FDN_THRESHOLD

ISAS = ["auto", "scalar", "avx2", "avx512", "neon"]
DEFAULT_THREADS = 2


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr with exit status 2, like every other
    error of the command line (argparse's own would print the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


# ----------------------------------------------------------------------------
# argument types: a bad value stops the parser (one line, exit status 2)

def int_arg(minimum: int):
    """argparse type: an integer >= minimum."""
    def conv(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {n}")
        return n
    conv.__name__ = f"int_at_least_{minimum}"
    return conv


positive_int = int_arg(1)
nonneg_int = int_arg(0)


def cpus_arg(text: str) -> tuple[int, ...]:
    """argparse type: '0-3,6' -> (0, 1, 2, 3, 6)."""
    from harness.measure.grid import parse_cpus
    try:
        return parse_cpus(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("pin: ")) from None


def quant_arg(text: str) -> str:
    """argparse type: a quant spec (a --quant choice, optionally +GROUP=TYPE overrides)."""
    from harness.model.synth import check_quant
    try:
        return check_quant(text.strip())
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def quant_list_arg(text: str) -> str:
    """argparse type: a comma list of quant specs."""
    return ",".join(quant_arg(q) for q in text.split(","))


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


def strategies_arg(text: str) -> str:
    """argparse type: a comma list of vocab strategies."""
    items = [t.strip() for t in text.split(",")]
    for t in items:
        if not t:
            raise argparse.ArgumentTypeError(f"empty strategy in {text!r}")
        strategy_arg(t)
    return ",".join(items)


def add_strategy_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vocab-strategy", default="full", type=strategy_arg, metavar="S", help=STRATEGY_HELP)


def add_engine_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--isa", default="auto", choices=ISAS)
    add_threads_arg(s)
    s.add_argument("--ubatch", type=positive_int, default=512)
    s.add_argument("--fdn", type=nonneg_int, default=DEFAULT_FDN_THRESHOLD,
                   help="u-batches of at most this many tokens use the fused delta-net, larger ones chunked "
                        f"(default {DEFAULT_FDN_THRESHOLD}: chunked always; 1: a fused decode)")
    add_strategy_arg(s)
    add_cache_type_args(s)
    add_repack_arg(s)


def add_repack_arg(s: argparse.ArgumentParser) -> None:
    """--repack: the weights in the repacked layout (row-interleaved panels) for the session."""
    s.add_argument("--repack", default="auto", choices=("auto", "on", "off"),
                   help="copy the matrices whose type has a repacked product on this ISA into that layout at "
                        "session start (auto: on AVX2 and AVX512 while the copies take at most 3/4 of the "
                        "available memory; on: all but 1 GiB of it; default auto)")


def add_cache_type_args(s: argparse.ArgumentParser) -> None:
    """-ctk/--cache-type-k and -ctv/--cache-type-v, llama.cpp's names for the KV cache types."""
    s.add_argument("-ctk", "--cache-type-k", default="f32", choices=list(CACHE_TYPES),
                   help="KV cache type of K (default f32)")
    s.add_argument("-ctv", "--cache-type-v", default="f32", choices=list(CACHE_TYPES),
                   help="KV cache type of V (default f32)")


def session_layout_kwargs(a) -> dict:
    """The Session arguments of -ctk / -ctv and --repack (where the command has it)."""
    kw = {"type_k": a.cache_type_k, "type_v": a.cache_type_v}
    if getattr(a, "repack", "auto") != "auto":
        kw["repack"] = a.repack
    return kw


# ----------------------------------------------------------------------------
# threads against the CPUs this process may use

def add_threads_arg(s: argparse.ArgumentParser) -> None:
    """-t/--threads (default DEFAULT_THREADS, resolved by check_threads) and --force."""
    s.add_argument("-t", "--threads", type=positive_int, default=None,
                   help=f"engine threads (default {DEFAULT_THREADS}); more than the CPUs this process may use "
                        f"needs --force")
    s.add_argument("--force", action="store_true",
                   help="run even with more threads than CPUs available (a warning instead of exit status 2)")


def available_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity mask)."""
    from harness.measure.machine import affinity_cpus
    return set(affinity_cpus())


_warned: set | None = None    # what the command running has warned about: (threads, CPUs), machine-state kinds


@contextlib.contextmanager
def one_warning_per_command():
    """Within it (one command, and the commands it runs, as demo runs sweep), a thread warning, or
    a machine-state warning, is printed once."""
    global _warned
    if _warned is not None:         # a command run by another one
        yield
        return
    _warned = set()
    try:
        yield
    finally:
        _warned = None


def threads_beyond_cpus(threads, *, given: bool, force: bool, pinned=None) -> bool:
    """Whether the largest of `threads` exceeds the CPUs available (the `pinned` ones when given).
    Given on the command line (or in a grid file) and not forced: BadArgumentError (exit status 2);
    forced, or the default: one warning line on stderr, and the run goes on."""
    threads = [threads] if isinstance(threads, int) else list(threads)
    cpus = available_cpus()
    if pinned:
        if not set(pinned) <= cpus:
            return False            # the pin check names the CPUs this process may not use
        cpus = set(pinned)
    n, worst = len(cpus), max(threads)
    if worst <= n:
        return False
    where = f"only {n} CPU{'' if n == 1 else 's'} available to this process" + (" (--pin)" if pinned else "")
    if given and not force:
        raise BadArgumentError(f"{worst} threads (-t {worst}) but {where}: the threads would wait on each other; "
                               f"use -t {n} or fewer, or --force to run anyway")
    if _warned is None or (worst, n) not in _warned:
        if _warned is not None:
            _warned.add((worst, n))
        what = f"{worst} threads (-t {worst})" if given else f"{worst} threads (the default)"
        how = "running anyway (--force)" if given else f"-t {n} would suit it"
        print(f"harness: warning: {what} but {where}; {how}", file=sys.stderr)
    return True


def check_threads(a, pinned=None) -> bool:
    """threads_beyond_cpus for a command's -t (None -> DEFAULT_THREADS, written back to a.threads)."""
    given = a.threads is not None
    if not given:
        a.threads = DEFAULT_THREADS
    return threads_beyond_cpus(a.threads, given=given, force=a.force, pinned=pinned)


def add_model_arg(s: argparse.ArgumentParser) -> None:
    """MODEL (a GGUF path) or --preset P --quant Q (a synthetic model, made and cached on first use)."""
    from harness.model.presets import PRESETS
    from harness.model.synth import QUANTS
    s.add_argument("model", nargs="?", help="GGUF file (or use --preset)")
    s.add_argument("--preset", choices=list(PRESETS), help="synthetic model, made and cached on first use")
    s.add_argument("--quant", default="q4_k_m", type=quant_arg,
                   help=f"with --preset: {', '.join(QUANTS)}, optionally +GROUP=TYPE (e.g. nvfp4+deltanet=bf16)")


def model_path(a) -> str:
    """The GGUF path of MODEL or of the cached synthetic --preset / --quant model."""
    from harness.model.synth import cached_model
    if (a.model is None) == (a.preset is None):
        raise UsageError("give a MODEL path or --preset (synthesized on first use)")
    return a.model or cached_model(a.preset, a.quant)


# ----------------------------------------------------------------------------
# the machine's state, checked before measuring

STRICT_HELP = ("refuse to measure (one line, exit status 1) when the machine is not quiet enough to resolve a change "
               "of the spread limit: other processes taking CPU time the threads need, or, where that cannot be "
               "read, a high load average; without it each reason is a warning")


def add_strict_arg(s: argparse.ArgumentParser) -> None:
    """--strict: see STRICT_HELP (harness.measure.system_state.check_before_measuring)."""
    s.add_argument("--strict", action="store_true", help=STRICT_HELP)


def machine_warning(reason: str) -> None:
    """One warning line on stderr for a reason of the machine-state check (quiet_check,
    throttled_between), printed once per command (as demo runs sweep)."""
    key = ("machine", str(reason))
    if _warned is not None:
        if key in _warned:
            return
        _warned.add(key)
    print(f"harness: warning: {reason}", file=sys.stderr)
