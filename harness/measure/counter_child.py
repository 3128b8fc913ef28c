"""The process that harness.measure.counters runs under cachegrind (or perf stat): it prepares
every kernel of a plan, then calls kernel i calls[i] times in a plain loop, and exits.

    python -m harness.measure.counter_child PLAN.json

PLAN.json: {"kernels": [{"kind": "dot", "isa": "avx2", "type": "q8_0", "n": 4096, "rows": 1}, ...],
"calls": [N0, N1, ...]}; kind "panel" takes "weight_rows" and "tokens" instead of "rows". Each run
of one measurement prepares the same kernels on the same seeded data, so two runs differ only by
the loop iterations their calls differ by. A bad plan: one line on stderr, exit status 3."""
from __future__ import annotations

import json
import sys

BAD_PLAN = 3


def prepare(kernel: dict):
    """The prepared call of one kernel of a plan."""
    from harness.measure.kernel_bench import prepare_dot, prepare_panel
    if kernel["kind"] == "dot":
        return prepare_dot(kernel["isa"], kernel["type"], kernel["n"], kernel["rows"])
    if kernel["kind"] == "panel":
        return prepare_panel(kernel["isa"], kernel["type"], kernel["n"], kernel["weight_rows"], kernel["tokens"])
    raise ValueError(f"unknown kernel kind {kernel['kind']!r}")


def run(plan: dict) -> None:
    """Prepare every kernel first, then run each one's loop."""
    calls = [prepare(k) for k in plan["kernels"]]
    for call, n in zip(calls, plan["calls"], strict=True):
        for _ in range(n):
            call()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        with open(argv[0]) as f:
            plan = json.load(f)
        run(plan)
    except Exception as e:  # noqa: BLE001 - the parent shows this one line
        print(f"counter child: {type(e).__name__}: {e}", file=sys.stderr)
        return BAD_PLAN
    return 0


if __name__ == "__main__":
    sys.exit(main())
