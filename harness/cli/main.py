"""The `harness` command line: the parser of every command group, and the one place that turns
errors into one line on stderr and an exit status (1 bad input, 2 bad arguments, 130 interrupted)."""
from __future__ import annotations

import argparse
import os
import sys

from harness.cli import ab, bench, bisect, demo, depth, draft, kernel_bench, model, report, selftest, sweep, text, vocab
from harness.cli.common import OneLineParser, one_warning_per_command
from harness.errors import BadArgumentError, HarnessError
from harness.version import __version__


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="harness", description="Measure and speed up Qwen3.5 inference on CPUs.")
    p.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    demo.add_parsers(sub, run=main)
    model.add_parsers(sub)
    text.add_parsers(sub)
    draft.add_parsers(sub)
    bench.add_parsers(sub)
    sweep.add_parsers(sub)
    depth.add_parsers(sub)
    report.add_parsers(sub)
    selftest.add_parsers(sub)
    bisect.add_parsers(sub)
    ab.add_parsers(sub)
    vocab.add_parsers(sub)
    kernel_bench.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv                # as given: `harness sweep` prints its --resume command line from it
    try:
        with one_warning_per_command():
            return args.func(args)
    except BadArgumentError as e:   # a bad value found after parsing
        print(f"harness: error: {e}", file=sys.stderr)
        return 2
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
