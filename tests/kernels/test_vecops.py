"""The float row kernels (norms, RoPE, softmax, gates, elementwise) and the three delta-net
algorithms of every ISA variant this CPU runs, against numpy written from the spec."""
import numpy as np
import pytest

from harness.native import Kernels, cpu_features

ISAS = cpu_features()["supported"]
rng = np.random.default_rng(7)
N = 1000 + 13          # not a multiple of any vector width: tails run too


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def rel_err(got, want):
    return float(np.abs(np.asarray(got, np.float64) - want).max() / (np.abs(want).max() + 1e-30))


@pytest.fixture(params=ISAS)
def k(request):
    return Kernels(request.param)


def test_elementwise_kernels_match_numpy(k):
    x, y, z = (rng.normal(size=N) * 4 for _ in range(3))
    assert rel_err(k.silu(x), x * sigmoid(x)) < 3e-6
    assert rel_err(k.swiglu(x, y), x * sigmoid(x) * y) < 3e-6
    assert rel_err(k.axpy(y, 0.37, x), y + 0.37 * x) < 1e-6
    assert rel_err(k.fmadd(z, x, y), z + x * y) < 1e-6
    assert rel_err(k.scale(x, -1.5), -1.5 * x) < 1e-7
    assert rel_err(k.sigmoid_mul(y, x), y * sigmoid(x)) < 3e-6


@pytest.mark.parametrize("n", [7, 64, 256, N])
def test_norms_match_numpy(k, n):
    x, w = rng.normal(size=n) * 3, rng.normal(size=n)
    want = x * w / np.sqrt(np.mean(x * x) + 1e-6)
    assert rel_err(k.rmsnorm(x, w, 1e-6), want) < 1e-6
    assert rel_err(k.l2norm(x, 1e-6), x / np.sqrt(np.sum(x * x) + 1e-6)) < 1e-6


@pytest.mark.parametrize("n_rot, d", [(64, 256), (16, 64), (10, 32)])
def test_rope_rotates_pairs_half_apart(k, n_rot, d):
    x = rng.normal(size=d)
    ang = 123 * 1e7 ** (-2.0 * np.arange(n_rot // 2) / n_rot)
    c, s = np.cos(ang), np.sin(ang)
    want = x.copy()
    a, b = x[: n_rot // 2], x[n_rot // 2: n_rot]
    want[: n_rot // 2], want[n_rot // 2: n_rot] = a * c - b * s, a * s + b * c
    assert rel_err(k.rope(x, c, s), want) < 1e-6          # dims past n_rot are untouched


@pytest.mark.parametrize("n", [1, 5, 300, 4099])
def test_softmax_matches_numpy(k, n):
    x = rng.normal(size=n) * 10
    e = np.exp(x - x.max())
    got = k.softmax(x)
    assert rel_err(got, e / e.sum()) < 3e-6
    assert abs(float(got.sum(dtype=np.float64)) - 1.0) < 1e-5


def deltanet_reference(q, kk, v, g, beta, S):
    """docs/qwen35.md §2.4.7 in float64: S <- e^g S; S += k (beta (v - S^T k))^T; o = S^T q / sqrt(Sk)."""
    S = S.astype(np.float64).copy()
    o = np.empty_like(v, dtype=np.float64)
    for t in range(len(q)):
        S *= np.exp(g[t])
        S += np.outer(kk[t], beta[t] * (v[t] - S.T @ kk[t]))
        o[t] = S.T @ q[t] / np.sqrt(q.shape[1])
    return o, S


@pytest.mark.parametrize("algo", ["recurrent", "fused", "chunked"])
@pytest.mark.parametrize("T", [1, 63, 130])
def test_deltanet_algorithms_match_float64_recurrence(k, algo, T):
    Sk = Sv = 32
    q, kk = rng.normal(size=(T, Sk)), rng.normal(size=(T, Sk))
    kk /= np.linalg.norm(kk, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    v, g, beta = rng.normal(size=(T, Sv)), -rng.random(T) * 2, sigmoid(rng.normal(size=T))
    S0 = rng.normal(size=(Sk, Sv)) * 0.1
    o, S = k.deltanet(algo, q, kk, v, g, beta, S0)
    o_ref, S_ref = deltanet_reference(q, kk, v, g, beta, S0)
    assert np.abs(o - o_ref).max() < 2e-5 and np.abs(S - S_ref).max() < 2e-5
