"""One value head of the chunked delta rule, timed per ISA on one thread: the prefill-sized head of
the 0.8B-4B shapes (T tokens, Sk = Sv = S), the ISAs alternating within each repetition, best of R.

    python reports/comparisons/dn_head.py [avx2 avx512 ...] [-T 512] [-S 128] [-r 15] [--algo chunked]

Prints ms per head and what that makes for a pp512 of the 0.8B shape (16 value heads x 18 delta-net
layers, split over 2 threads). The inputs are random with the model's value ranges (unit keys, gates
g <= 0, beta in (0, 1)); speed does not depend on them."""
import argparse
import time

import numpy as np

from harness.native import Kernels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("isas", nargs="*", default=["avx2", "avx512"])
    ap.add_argument("-T", type=int, default=512, help="tokens in the head's u-batch")
    ap.add_argument("-S", type=int, default=128, help="key and value head size")
    ap.add_argument("-r", "--repetitions", type=int, default=15)
    ap.add_argument("--algo", default="chunked", choices=["recurrent", "fused", "chunked"])
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    T, S = a.T, a.S
    q = rng.standard_normal((T, S)).astype(np.float32) / np.float32(np.sqrt(S))
    k = rng.standard_normal((T, S)).astype(np.float32)
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    v = rng.standard_normal((T, S)).astype(np.float32)
    g = (-0.1 * np.abs(rng.standard_normal(T))).astype(np.float32)
    beta = (1 / (1 + np.exp(-rng.standard_normal(T)))).astype(np.float32)
    state = np.zeros((S, S), np.float32)
    kernels = {isa: Kernels(isa) for isa in a.isas}
    best = {isa: float("inf") for isa in a.isas}
    for _ in range(a.repetitions):
        for isa, kt in kernels.items():
            t0 = time.perf_counter()
            kt.deltanet(a.algo, q, k, v, g, beta, state)
            best[isa] = min(best[isa], time.perf_counter() - t0)
    for isa, sec in best.items():
        print(f"{isa:8s} {a.algo} T={T} S={S}: {sec * 1e3:.3f} ms per head (best of {a.repetitions}); "
              f"0.8B pp{T}: 288 heads over 2 threads = {sec * 144e3:.1f} ms")


if __name__ == "__main__":
    main()
