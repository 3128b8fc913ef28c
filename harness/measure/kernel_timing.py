"""Wall-clock time per call of a prepared kernel: the median of several timed batches of calls,
and the cost of the call itself (Python loop, method call and cffi), measured on a kernel-shaped
call of a C function that does nothing, so a reader can tell how much of a figure is the kernel."""
from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness import native

BATCHES = 7
BATCH_SECONDS = 0.005            # each timed batch runs about this long


@dataclass(frozen=True)
class CallTiming:
    """ns per call: the median over batches, each batch's own figure, and the calls per batch."""
    ns_per_call: float
    batches_ns: tuple[float, ...]
    calls_per_batch: int

    @property
    def spread(self) -> float:
        """(max - min) / median of the batches."""
        return (max(self.batches_ns) - min(self.batches_ns)) / self.ns_per_call if self.ns_per_call else 0.0


def _batch(call: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.perf_counter_ns() - t0) / calls


def time_call(call: Callable[[], object], batches: int = BATCHES, batch_seconds: float = BATCH_SECONDS) -> CallTiming:
    """Time `call`: a warm-up sizes the batch to about batch_seconds, then `batches` timed batches
    with the garbage collector paused; the figure is their median."""
    calls = 1
    while True:                    # warm-up and calibration: double until a batch takes a tenth of the target
        per = _batch(call, calls)
        if per * calls >= batch_seconds * 1e8 or calls >= 1 << 22:
            break
        calls *= 2
    calls = max(1, int(batch_seconds * 1e9 / max(per, 1.0)))
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        figures = tuple(_batch(call, calls) for _ in range(batches))
    finally:
        if was_enabled:
            gc.enable()
    return CallTiming(statistics.median(figures), figures, calls)


class NullKernel:
    """A call shaped as a PreparedDot's (a method calling a closure calling a C function through
    cffi) whose C function returns at once: what a timed kernel call costs besides the kernel."""

    def __init__(self) -> None:
        fn = native.lib.q35_act_type

        def call():
            return fn(0)
        self._call = call

    def __call__(self) -> None:
        self._call()


def call_overhead(batches: int = BATCHES, batch_seconds: float = BATCH_SECONDS) -> CallTiming:
    """ns per call of NullKernel: the part of a kernel's ns/call that is the call."""
    return time_call(NullKernel(), batches, batch_seconds)
