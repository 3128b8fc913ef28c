"""`harness kernel-bench`: ns per call of the dot kernels (vec_dot, vec_dot4) per weight type and
ISA variant, and with --counters their instructions and simulated cache misses per call (cachegrind
or perf). Heavy modules are imported when the command runs."""
from __future__ import annotations

import argparse
import sys

from harness.cli.common import ISAS, positive_int

DOT_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "iq4_xs", "mxfp4", "nvfp4", "q4_1", "q5_0",
             "q5_1", "iq4_nl", "q2_k", "q3_k", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s",
             "iq1_s", "iq1_m", "tq1_0", "tq2_0"]  # = kernel_bench.DOT_TYPES
BACKENDS = ["cachegrind", "perf", "auto"]                                                # counters.BACKENDS

DESCRIPTION = """\
Time the dot kernels (one weight row with 1 or 4 activation rows) of the chosen weight types and
ISA variants on rows of N values: ns per call is the median of several timed batches, the call
itself (Python loop and cffi, shown under the table) included. With --counters, each kernel is also
run in a child Python process under valgrind's cachegrind (or perf stat, --backend perf) and the
instructions per call (and cachegrind's simulated I1 / D1 / LL cache misses per call) are shown
beside the timings: the difference of two runs that call the kernel N1 and N2 times, so that the
child's start-up cancels. Under cachegrind the count of the engine's own functions is exact: a 1%
change in a kernel shows as a 1% change in the count, with no noise. A measurement takes about 10 s
(two runs of a few seconds each, nearly all the child's start-up), plus ~5 s per extra kernel.

What the counts miss: memory-bound decode (an instruction count does not see DRAM bandwidth or
latency, the clock frequency, or contention with other cores and processes, which set token
generation's speed); cachegrind's misses come from a simulated two-level cache of fixed geometry,
not this machine's hierarchy; instructions are not time. valgrind cannot run AVX-512 instructions,
so under cachegrind only the avx2 and scalar variants are counted (avx512, or `auto` on a CPU whose
best variant is avx512, is refused: give --isa avx2 or scalar)."""


def _comma_list(choices: list[str], what: str):
    def conv(text: str) -> list[str]:
        items = [x.strip().lower() for x in text.split(",")]
        for x in items:
            if x not in choices:
                raise argparse.ArgumentTypeError(f"{x!r} is not {what} (choose from {', '.join(choices)})")
        return list(dict.fromkeys(items))
    conv.__name__ = what
    return conv


types_arg = _comma_list(DOT_TYPES, "a weight type with a dot kernel")
isas_arg = _comma_list(ISAS, "an ISA variant")


def rows_arg(text: str) -> tuple[int, ...]:
    """argparse type: '1,4' -> (1, 4); each 1 (vec_dot) or 4 (vec_dot4)."""
    items = [x.strip() for x in text.split(",")]
    if any(x not in ("1", "4") for x in items):
        raise argparse.ArgumentTypeError(f"rows are 1 (vec_dot) and/or 4 (vec_dot4), got {text!r}")
    return tuple(dict.fromkeys(int(x) for x in items))


def cmd_kernel_bench(a) -> int:
    from harness.errors import BadArgumentError, UsageError
    from harness.measure.kernel_table import check_kernel_bench, kernel_bench
    from harness.report.kernel_tables import format_csv, format_json, format_markdown
    try:
        isas = check_kernel_bench(a.type, a.isa, a.n, a.rows, a.counters, a.backend)
    except UsageError as e:
        raise BadArgumentError(str(e)) from None
    bench = kernel_bench(a.type, isas, a.n, a.rows, a.batches, a.counters, a.backend, cache_sim=not a.no_cache_sim)
    if bench.backend_note and a.output != "md":
        print(f"harness: note: {bench.backend_note}", file=sys.stderr)
    print({"md": format_markdown, "csv": format_csv, "json": format_json}[a.output](bench).rstrip("\n"))
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("kernel-bench", help="ns per call of the dot kernels; with --counters instructions and "
                                            "simulated cache misses per call (cachegrind / perf)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--type", type=types_arg, default=list(DOT_TYPES), metavar="T[,T...]",
                   help=f"weight types (default all: {','.join(DOT_TYPES)})")
    s.add_argument("--isa", type=isas_arg, default=["auto"], metavar="ISA[,ISA...]",
                   help=f"ISA variants ({', '.join(ISAS)}; default auto, the best this CPU runs)")
    s.add_argument("-n", type=positive_int, default=4096, help="values per row (a multiple of every chosen "
                                                               "type's block size; default 4096)")
    s.add_argument("--rows", type=rows_arg, default=(1, 4), metavar="1,4",
                   help="activation rows: 1 (vec_dot) and/or 4 (vec_dot4); default both")
    s.add_argument("-r", "--batches", type=positive_int, default=7, help="timed batches per kernel (the median "
                                                                         "is shown; default 7)")
    s.add_argument("--counters", action="store_true", help="also count instructions (and simulated cache misses) "
                                                           "per call in a child process under valgrind")
    s.add_argument("--backend", choices=BACKENDS, default="cachegrind",
                   help="counter backend: cachegrind (default; exact, with cache misses, no AVX-512), perf "
                        "(perf stat -e instructions:u, where this machine exposes hardware counters), auto "
                        "(perf if it can count here, else cachegrind)")
    s.add_argument("--no-cache-sim", action="store_true", help="cachegrind without its cache simulation: "
                                                               "instructions only, about a third faster")
    s.add_argument("-o", "--output", default="md", choices=["md", "json", "csv"])
    s.set_defaults(func=cmd_kernel_bench)
