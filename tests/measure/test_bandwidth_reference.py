"""The roofline's reference (issue 15, item 5): a read bandwidth cached once, measured under load
(6.4 GB/s; 12.0 re-measured), made every later figure exceed 100% ("8.14 (127% of 6.4)") with no
refresh and no warning. Now every run probes the bandwidth briefly at its start and its end (the
cache is the fallback when the probes fail), --refresh-bandwidth re-takes the cached measurement,
and harness bench never prints more than 100% without saying the reference is stale."""
import json

import pytest

import harness.measure.machine as hm
from harness.measure.bench import BenchConfig, run_bench
from harness.model.loader import load_model
from harness.report.bench_tables import roofline_cell


# ---- the cell of the markdown table ------------------------------------------------------------------

def test_a_figure_within_the_reference_prints_as_before():
    assert roofline_cell(8.14, 12.9) == "8.14 (63% of 12.9)"
    assert roofline_cell(6.4, 6.4) == "6.40 (100% of 6.4)"


def test_more_than_100_percent_says_the_reference_is_stale():
    cell = roofline_cell(8.14, 6.4)
    assert cell.startswith("8.14 (127% of 6.4 GB/s") and "stale reference" in cell
    assert roofline_cell(8.14, 6.4, under_load=True) == "8.14 (127% of 6.4 GB/s measured under load: stale reference)"


def test_no_figure_or_no_reference_is_an_empty_cell():
    nan = float("nan")
    assert roofline_cell(nan, 12.0) == "" and roofline_cell(8.0, None) == ""
    assert roofline_cell(8.0, nan) == "" and roofline_cell(8.0, -1.0) == ""


# ---- probes at the start and the end of a run --------------------------------------------------------------

class FakeLib:
    """q35_read_bandwidth that answers probes (PROBE_BYTES) from a list and the long measurement
    (BUFFER_BYTES) with a fixed figure; records every call as (bytes, threads)."""

    def __init__(self, probes, long=12.0):
        self.probes, self.long, self.calls = list(probes), long, []

    def q35_read_bandwidth(self, nbytes, threads, passes):
        self.calls.append((nbytes, threads))
        return self.probes.pop(0) if nbytes == hm.PROBE_BYTES else self.long


@pytest.fixture
def stale_cache(synth_dir, monkeypatch, tmp_path):
    """A cache holding a figure measured under load (6.4 GB/s) for every thread count."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    from harness.provenance import cpu_model
    import platform
    data = {}
    for t in range(1, 9):
        key = f"{platform.node()}|{cpu_model()}|read_gbps|{t}"
        data[key], data[key + "|measured"] = 6.4, "2026-01-01T00:00:00+00:00"
    (tmp_path / "machine.json").write_text(json.dumps(data))
    return tmp_path


def test_a_run_records_the_bandwidth_at_its_start_and_end(tiny_model_path, stale_cache, monkeypatch):
    fake = FakeLib([11.0, 12.5])
    monkeypatch.setattr(hm, "lib", fake)
    with load_model(tiny_model_path) as m:
        cfg = BenchConfig(n_prompt=4, n_gen=2, repetitions=1, threads=1)
        results = run_bench(m, cfg)
        from harness.measure.rows import records
        recs = records(m, cfg, results)
    assert fake.calls == [(hm.PROBE_BYTES, 1), (hm.PROBE_BYTES, 1)]       # two probes, no long measurement
    for r, rec in zip(results, recs):
        assert (r.extra["read_gbps_start"], r.extra["read_gbps_end"]) == (11.0, 12.5)
        assert r.extra["read_gbps"] == 12.5 and r.extra["read_source"] == "probe"   # not the stale 6.4
        assert "probed at this run's start 11.0 GB/s and end 12.5 GB/s" in r.extra["read_measured"]
        assert (rec["machine_read_start_gbps"], rec["machine_read_end_gbps"]) == (11.0, 12.5)
        assert rec["machine_read_gbps"] == 12.5 and rec["machine_read_source"] == "probe"


def test_failed_probes_fall_back_to_the_cache(tiny_model_path, stale_cache, monkeypatch):
    fake = FakeLib([-1.0, -1.0])
    monkeypatch.setattr(hm, "lib", fake)
    with load_model(tiny_model_path) as m:
        r = run_bench(m, BenchConfig(n_prompt=0, n_gen=2, repetitions=1, threads=1))[0]
    assert r.extra["read_gbps"] == 6.4 and r.extra["read_source"] == "cache"
    assert r.extra["read_gbps_start"] is None and r.extra["read_gbps_end"] is None
    assert "cached: the probes of this run failed" in r.extra["read_measured"]


def test_refresh_bandwidth_re_takes_the_cached_measurement(tiny_model_path, stale_cache, monkeypatch, capsys):
    from harness.cli.main import main
    fake = FakeLib([12.0, 12.0], long=12.3)
    monkeypatch.setattr(hm, "lib", fake)
    assert main(["bench", tiny_model_path, "-p", "0", "-n", "2", "-r", "1", "-t", "1", "--refresh-bandwidth",
                 "-o", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    assert (hm.BUFFER_BYTES, 1) in fake.calls and rec["machine_read_cached_gbps"] == 12.3
    data = json.loads((stale_cache / "machine.json").read_text())
    assert 12.3 in data.values()                                           # the stale 6.4 is replaced


def test_a_failed_long_measurement_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    monkeypatch.setattr(hm, "lib", FakeLib([], long=-1.0))
    b = hm.read_bandwidth_record(300)
    assert b.gbps != b.gbps                                                # nan
    assert not (tmp_path / "machine.json").exists()


def test_probes_use_no_more_readers_than_cpus():
    from harness.native import default_threads
    assert hm.probe_threads(64) == min(64, default_threads()) and hm.probe_threads(1) == 1


def test_a_sweep_records_start_and_end_bandwidth_in_its_provenance(synth_dir, tmp_path, monkeypatch, capsys):
    from harness.cli.main import main
    fake = FakeLib([10.0, 11.5])
    monkeypatch.setattr(hm, "lib", fake)
    out = tmp_path / "res"
    assert main(["sweep", "--preset", "tiny", "--quant", "q8_0", "--pp", "4", "--tg", "0", "-r", "1", "-t", "1",
                 "--no-profile", "--refresh-bandwidth", "-o", str(out)]) == 0
    prov = json.loads((out / "provenance.json").read_text())
    for p in (prov, prov["runs"][-1]):
        bw = p["machine_read_bandwidth"]["1"]
        assert (bw["start_gbps"], bw["end_gbps"], bw["gbps"]) == (10.0, 11.5, 11.5) and bw["refreshed"] is True
    assert len(prov["runs"]) == 1
    assert (hm.BUFFER_BYTES, 1) in fake.calls
