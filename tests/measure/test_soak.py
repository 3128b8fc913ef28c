"""Long runs: a session decodes until its context is full without growing, the full context is a
clear error, reset() gives back a fresh session, and sessions in two Python threads give the
logits they give one at a time.

One engine thread per session in the long loop: on a loaded 2-core machine two spinning
threads per token make the 2048 steps take ten times longer, and the thread count does not
change the memory the session holds (tests/test_determinism.py covers 2 threads)."""
import threading
import tracemalloc

import numpy as np
import pytest

from harness.engine.session import Session
from harness.errors import UsageError
from harness.model.loader import load_model

CTX = 2048
WARMUP = 256
RSS_BOUND = 1 << 20          # resident set growth allowed after warm-up, bytes (< 600 B per token)
PY_BOUND = 64 << 10          # traced Python allocations still held after the loop, bytes


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_decode_until_the_context_is_full(tiny_model_path, record_property):
    with load_model(tiny_model_path) as m, Session(m, threads=1, ctx=CTX) as s:
        tok, rss, first = 1, {}, None
        for i in range(CTX):
            logits = s.decode(tok)
            if i == 0:
                first = logits.copy()
            if i == WARMUP:
                rss["warm"] = _rss()
                tracemalloc.start()
                py0 = tracemalloc.get_traced_memory()[0]
            tok = int(logits.argmax())          # greedy: each step depends on the last
        py_held = tracemalloc.get_traced_memory()[0] - py0
        tracemalloc.stop()
        rss["end"] = _rss()
        assert s.n_past == CTX and np.isfinite(logits).all()

        with pytest.raises(UsageError, match=f"context overflow: {CTX} tokens in the context \\+ 1 new > ctx {CTX}"):
            s.decode(tok)
        assert s.n_past == CTX                   # the refused token changed nothing

        s.reset()
        assert s.n_past == 0
        assert np.array_equal(s.decode(1), first)   # the same first step as the fresh session
    growth = rss["end"] - rss["warm"]
    line = (f"soak: {CTX} decode steps to a full context; RSS {rss['warm'] / 2**20:.1f} -> "
            f"{rss['end'] / 2**20:.1f} MiB after {WARMUP} warm-up steps (bound +{RSS_BOUND >> 10} KiB), "
            f"Python allocations held {py_held} B (bound {PY_BOUND >> 10} KiB)")
    print(line)
    record_property("cases_tried", line)
    assert growth <= RSS_BOUND, line
    assert py_held <= PY_BOUND, line


def test_reset_restores_a_fresh_session(tiny_model_path):
    """After prefill + decode, reset() then the same calls give the fresh session's logits, bit for bit."""
    toks = np.random.default_rng(3).integers(0, 4096, 40)
    with load_model(tiny_model_path) as m:
        def run(s):
            a = s.prefill(toks[:30])
            b = np.stack([s.decode(int(t)) for t in toks[30:]])
            return a, b
        with Session(m, threads=1, ctx=64, ubatch=8) as fresh:
            want = run(fresh)
        with Session(m, threads=1, ctx=64, ubatch=8) as s:
            s.prefill(toks[::-1][:50])           # a different history, nearly filling the context
            s.reset()
            got = run(s)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("threads", [1, 2])
def test_two_sessions_in_two_python_threads(tiny_model_path, threads):
    """Two sessions on one model, one per Python thread, started together, each decoding its own
    stream: the logits equal those of the same sessions run one after the other."""
    rng = np.random.default_rng(7)
    streams = [rng.integers(0, 4096, 48), rng.integers(0, 4096, 48)]
    with load_model(tiny_model_path) as m:
        def run(toks, out=None, i=0, barrier=None):
            with Session(m, threads=threads, ctx=64, ubatch=5) as s:
                if barrier:
                    barrier.wait()
                a = s.prefill(toks[:32])
                b = np.stack([s.decode(int(t)) for t in toks[32:]])
            if out is not None:
                out[i] = (a, b)
            return a, b

        alone = [run(t) for t in streams]
        out, barrier = {}, threading.Barrier(2)
        ths = [threading.Thread(target=run, args=(streams[i], out, i, barrier)) for i in range(2)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
    for i in range(2):
        assert np.array_equal(out[i][0], alone[i][0]) and np.array_equal(out[i][1], alone[i][1]), i
