"""One measurement: llama-bench test names, summary figures and the noise flag, depth runs that start
from a saved state, the separate profiled run, peak RSS, pinning, the vocab-strategy passthrough,
the row it becomes, and the cached machine bandwidth with the time it was measured."""
import json
import math
import os

import numpy as np
import pytest

import harness.measure.bench as hb
from harness.measure.bench import BenchConfig, BenchResult, iter_bench
from harness.errors import UsageError
from harness.store.schema import RESULT_COLUMNS, config_id, summarize
from harness.store.schema import test_name as name_of


def result(samples_ns, n_prompt=0, n_gen=8, bpt=1_000_000, **kw):
    return BenchResult(name_of(n_prompt, n_gen), n_prompt, n_gen, samples_ns, bpt, **kw)


def test_test_names_follow_llama_bench():
    assert name_of(512, 0) == "pp512"
    assert name_of(0, 128) == "tg128"
    assert name_of(512, 128) == "pp512+tg128"
    assert name_of(512, 0, 1024) == "pp512 @ d1024"
    assert name_of(0, 32, 4096) == "tg32 @ d4096"


def test_summary_figures_of_the_samples():
    s = summarize([10.0, 12.0, 11.0, 30.0])
    assert (s.avg, s.median, s.min, s.max) == (15.75, 11.5, 10.0, 30.0)
    assert s.stddev == pytest.approx(9.5351, abs=1e-4)
    assert s.spread == pytest.approx(9.5351 / 11.5, abs=1e-4)
    assert math.isnan(summarize([5.0]).spread)


def test_spread_too_wide_to_judge_is_flagged_with_a_line():
    steady = result([1_000_000_000, 1_010_000_000, 990_000_000])      # 8 tokens in ~1 s, 1% spread
    noisy = result([1_000_000_000, 1_300_000_000, 800_000_000])
    single = result([1_000_000_000])
    assert steady.spread_ok() and steady.spread_note() == ""
    assert not noisy.spread_ok()
    assert "tg8: spread too wide to judge (stddev 24.0% of the median > 5%)" in noisy.spread_note()
    assert noisy.spread_ok(limit=0.30)
    assert not single.spread_ok() and "one repetition" in single.spread_note()


def test_rates_and_weight_bandwidth():
    tg = result([2_000_000_000, 1_000_000_000, 4_000_000_000], n_gen=8, bpt=500_000_000)
    assert tg.samples_ts == [4.0, 8.0, 2.0]
    assert tg.median_ts == 4.0 and tg.avg_ts == pytest.approx(14 / 3)
    assert tg.weight_gbps == pytest.approx(500_000_000 * 4.0 / 1e9)   # at the median rate
    pp = result([1_000_000_000], n_prompt=64, n_gen=0)
    assert pp.samples_ts == [64.0] and math.isnan(pp.weight_gbps)
    pg = result([1_000_000_000], n_prompt=64, n_gen=16)
    assert pg.samples_ts == [80.0]                                    # prompt + generated tokens


def test_depth_runs_start_from_the_saved_state_each_time(synth_dir):
    from harness.engine.session import Session
    from harness.model.loader import load_model
    from harness.model.synth import cached_model
    with load_model(cached_model("tiny", "q8_0")) as m, Session(m, threads=1, ctx=64) as s:
        state = hb._depth_state(s, 16, seed=0, vocab=m.config.vocab_size)
        assert s.n_past == 16
        run = hb._runner(0, 5, seed=0, vocab=m.config.vocab_size)
        run(s, state)
        assert s.n_past == 21
        run(s, state)                               # restored, not continued
        assert s.n_past == 21
        pp = hb._runner(8, 0, seed=0, vocab=m.config.vocab_size)
        pp(s, None)                                 # no depth: an empty context
        assert s.n_past == 8


def test_a_measurement_at_depth_with_its_profiled_run(synth_dir):
    from harness.model.loader import load_model
    from harness.model.synth import cached_model
    cfg = BenchConfig(repetitions=2, threads=1, ubatch=4, fdn_threshold=0, n_depth=12, profile=True)
    with load_model(cached_model("tiny", "q8_0")) as m:
        res = list(iter_bench(m, cfg, [(8, 0), (0, 4)]))
        n_layer = m.config.n_layer
    assert [r.test for r in res] == ["pp8 @ d12", "tg4 @ d12"]
    for r in res:
        assert len(r.samples_ns) == 2 and all(ns > 0 for ns in r.samples_ns)
        assert r.n_depth == 12 and r.extra["isa"] in ("scalar", "avx2", "avx512", "neon")
        assert r.peak_rss_bytes > 10 * 2**20
    calls = res[1].profile.groupby("op")["calls"].sum()
    # one profiled run of tg4: every layer's FFN once per token, the LM head once per token
    assert calls["mm_ffn_gate_up"] == 4 * n_layer and calls["mm_lm_head"] == 4
    assert set(res[1].profile.query("op == 'mm_lm_head'")["layer"]) == {-1}
    # pp8 in u-batches of 4: two u-batches through every layer, the LM head once (last token only)
    calls = res[0].profile.groupby("op")["calls"].sum()
    assert calls["mm_ffn_gate_up"] == 2 * n_layer and calls["mm_lm_head"] == 1


def test_timed_runs_use_a_session_without_the_profiler(synth_dir, monkeypatch):
    made = []
    real = hb.Session

    def spy(model, **kw):
        made.append(kw["profile"])
        return real(model, **kw)
    monkeypatch.setattr(hb, "Session", spy)
    from harness.model.loader import load_model
    from harness.model.synth import cached_model
    with load_model(cached_model("tiny", "q8_0")) as m:
        list(iter_bench(m, BenchConfig(repetitions=1, threads=1, profile=True), [(4, 0)]))
        list(iter_bench(m, BenchConfig(repetitions=1, threads=1, profile=False), [(4, 0)]))
    assert made == [False, True, False]


def test_peak_rss_is_reset_per_measurement():
    from harness.measure.rss import peak_rss_bytes, reset_peak
    big = np.ones(40 * 2**20 // 8)                  # 40 MiB touched
    high = peak_rss_bytes()
    del big
    if not reset_peak():
        pytest.skip("this OS cannot reset the peak RSS (/proc/self/clear_refs)")
    assert peak_rss_bytes() < high - 30 * 2**20


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_pinning_restricts_the_process_and_restores_it():
    before = os.sched_getaffinity(0)
    one = min(before)
    with hb.pinned((one,)):
        assert os.sched_getaffinity(0) == {one}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(UsageError, match="cannot pin to CPUs"), hb.pinned((4096,)):
        pass
    assert os.sched_getaffinity(0) == before


def test_vocab_strategy_reaches_the_engine_only_when_not_full(monkeypatch):
    cfg = BenchConfig(vocab_strategy="full")
    assert "vocab_strategy" not in hb.session_kwargs(cfg, ctx=8)

    class WithStrategies:
        def __init__(self, model, isa="auto", threads=1, ubatch=512, fdn_threshold=512, ctx=4096,
                     dn_algo="auto", profile=False, vocab_strategy="full"):
            pass

    class Without:
        def __init__(self, model, isa="auto", threads=1, ubatch=512, fdn_threshold=512, ctx=4096,
                     dn_algo="auto", profile=False):
            pass
    monkeypatch.setattr(hb, "Session", WithStrategies)
    assert hb.session_kwargs(BenchConfig(vocab_strategy="subset:64"), ctx=8)["vocab_strategy"] == "subset:64"
    monkeypatch.setattr(hb, "Session", Without)
    with pytest.raises(UsageError, match="vocab strategy 'subset:64': this engine has no vocab strategies"):
        hb.session_kwargs(BenchConfig(vocab_strategy="subset:64"), ctx=8)


def test_a_measurement_becomes_a_complete_store_row():
    import pandas as pd

    from harness.model.fingerprint import ModelIdentity
    from harness.measure.rows import profile_rows, result_row
    ident = ModelIdentity("tiny-q8_0", "/m.gguf", "f" * 64, "tiny", "q8_0", 10, 2_000_000, {})
    cfg = BenchConfig(threads=2, ubatch=64, fdn_threshold=16, isa="auto")
    r = result([1_000_000_000, 1_000_000_000, 1_010_000_000], n_gen=8, bpt=2_000_000,
               peak_rss_bytes=5000, extra={"isa": "avx2", "read_gbps": 0.032})
    r.profile = pd.DataFrame([{"layer": -1, "kind": "head", "op": "mm_lm_head", "calls": 8, "ns": 10, "bytes": 80}])
    row = result_row(ident, cfg, r, commit=("abc", False))
    assert set(row) == set(RESULT_COLUMNS)
    assert row["config_id"] == config_id(row)
    assert (row["isa"], row["n_threads"], row["n_ubatch"], row["fdn_threshold"]) == ("avx2", 2, 64, 16)
    assert (row["test"], row["n_prompt"], row["n_gen"], row["n_depth"]) == ("tg8", 0, 8, 0)
    assert row["median_ts"] == 8.0 and row["ms_per_token"] == 125.0
    assert row["weight_gbps"] == pytest.approx(0.016) and row["bandwidth_fraction"] == pytest.approx(0.5)
    assert row["spread_ok"] is True and row["engine"] == "qwen35-harness" and row["commit"] == "abc"
    assert row["peak_rss_bytes"] == 5000 and row["model_preset"] == "tiny"
    # a profile without the macs column (an older engine's) gives 0 there
    assert profile_rows(row["config_id"], r) == [{"config_id": row["config_id"], "test": "tg8", "layer": -1,
                                                  "op": "mm_lm_head", "calls": 8, "ns": 10, "bytes": 80, "macs": 0}]


def test_machine_bandwidth_is_measured_once_and_keeps_its_time(tmp_path, monkeypatch):
    import harness.measure.machine as hm
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    calls = []

    class FakeLib:
        @staticmethod
        def q35_read_bandwidth(nbytes, threads, passes):
            calls.append(threads)
            return 12.5
    monkeypatch.setattr(hm, "lib", FakeLib)
    a = hm.read_bandwidth_record(3)
    b = hm.read_bandwidth_record(3)
    assert calls == [3] and a == b and a.gbps == 12.5 and a.measured.startswith("20")
    data = json.loads((tmp_path / "machine.json").read_text())
    key = next(k for k in data if k.endswith("|read_gbps|3"))
    assert data[key] == 12.5                     # a bare number, as older readers expect
    del data[key + "|measured"]                  # an entry cached before times were kept
    (tmp_path / "machine.json").write_text(json.dumps(data))
    c = hm.read_bandwidth_record(3)
    assert calls == [3] and c.gbps == 12.5 and c.measured.startswith("unknown, before ")


def test_bench_command_at_depth_writes_llama_bench_json(synth_dir, capsys):
    from harness.cli.main import main
    assert main(["bench", "--preset", "tiny", "--quant", "q8_0", "-p", "8", "-n", "2", "-r", "2", "-d", "8",
                 "-t", "1", "-o", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [(r["test"], r["n_prompt"], r["n_gen"], r["n_depth"]) for r in recs] == [
        ("pp8 @ d8", 8, 0, 8), ("tg2 @ d8", 0, 2, 8)]
    for r in recs:
        assert r["median_ts"] == pytest.approx(float(np.median(r["samples_ts"])))
        assert r["peak_rss_bytes"] > 0 and isinstance(r["spread_ok"], bool) and r["vocab_strategy"] == "full"
        assert r["machine_read_measured"]
