"""Peer engines in a sweep (issue 18 item 1): `--engine native,llama-bench=PATH` runs the peer's
llama-bench with our configuration's flags on the same file, interleaved with ours, and stores its
rows beside ours; a configuration the peer cannot run is reported, not dropped. The peer here is a
stand-in script that answers like llama-bench (support.fake_llama_bench); the real binary is
exercised by the stored report's command (README)."""
import json

import pytest

from harness.cli.main import main
from harness.errors import UsageError
from harness.measure.peers import PeerEngine, parse_engines, peer_command
from harness.store.results import load_results
from support.fake_llama_bench import write_fake_llama_bench


@pytest.fixture
def fake_llama_bench(tmp_path, monkeypatch):
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))
    return write_fake_llama_bench(tmp_path), log


def test_engine_lists_are_parsed_and_bad_ones_refused(fake_llama_bench, tmp_path):
    path, _ = fake_llama_bench
    c = parse_engines(f"native,llama-bench={path},ik={path}", [f"ik=-rtr 1 -fmoe 1"])
    assert c.native and [p.engine for p in c.peers] == ["llama.cpp", "ik_llama.cpp"]
    assert c.peers[1].extra == ("-rtr", "1", "-fmoe", "1")
    assert not parse_engines(f"llama-bench={path}").native
    for bad, msg in ((f"llama-bench={tmp_path / 'missing'}", "not an executable file"),
                     ("vllm=/x", "is not 'native'"), ("native,,", "empty item"),
                     (f"llama-bench={path},llama.cpp={path}", "each peer engine once")):
        with pytest.raises(UsageError, match=msg):
            parse_engines(bad)
    with pytest.raises(UsageError, match="not in --engine"):
        parse_engines("native", ["ik=-rtr 1"])


def test_the_peer_command_means_what_our_configuration_means():
    peer = PeerEngine("llama.cpp", "/bin/llama-bench", ("-fa", "1"))
    cmd = peer_command(peer, "/m.gguf", 2, 256, 0, [(64, 0), (512, 0), (0, 16)], 5)
    assert cmd == ["/bin/llama-bench", "-m", "/m.gguf", "-t", "2", "-ub", "256", "-r", "5", "-p", "64,512",
                   "-n", "16", "-fa", "1", "-o", "json"]
    assert peer_command(peer, "/m.gguf", 1, 8, 4096, [(0, 16)], 3)[-8:-4] == ["-n", "16", "-d", "4096"]


def test_a_sweep_with_a_peer_stores_both_engines_interleaved(fake_llama_bench, tmp_path, tiny_model_path, capsys):
    path, log = fake_llama_bench
    out = tmp_path / "r"
    rc = main(["sweep", "--model", str(tiny_model_path), "--fdn", "0,16", "-t", "1,2", "--pp", "8", "--tg", "4",
               "-r", "2", "--no-profile", "--engine", f"native,llama-bench={path}", "--peer-args",
               "llama-bench=-fa 1", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    f = load_results(out).frame
    ours, peer = f[f["engine"] == "qwen35-harness"], f[f["engine"] == "llama.cpp"]
    assert len(ours) == 2 * 2 * 2 and len(peer) == 2 * 2          # the peer runs once per threads value
    assert set(peer["model"]) == set(ours["model"]) and set(peer["model_hash"]) == set(ours["model_hash"])
    assert sorted(peer["n_threads"].astype(int)) == [1, 1, 2, 2]
    assert all(json.loads(s)["flash_attn"] == 1 for s in peer["engine_settings"])
    assert peer["commit"].eq("fake123").all() and peer["machine_read_gbps"].notna().all()
    calls = [json.loads(x) for x in log.read_text().splitlines()]
    assert [c[c.index("-t") + 1] for c in calls] == ["1", "2"]
    # interleaved: the peer's t1 rows come right after our first t1 point, before any t2 point of ours
    order = list(f["engine"] + ":" + f["n_threads"].astype(int).astype(str))
    assert order.index("llama.cpp:1") < order.index("qwen35-harness:2") < order.index("llama.cpp:2")
    # the report tables ours against the peer
    assert main(["report", str(out), "-o", str(tmp_path / "html")]) == 0
    page = (tmp_path / "html" / "index.html").read_text()
    assert "ours against llama.cpp" in page and "ours / llama.cpp" in page and "flash_attn" in page
    # resume measures nothing twice, the peer included
    assert main(["sweep", "--model", str(tiny_model_path), "--fdn", "0,16", "-t", "1,2", "--pp", "8", "--tg", "4",
                 "-r", "2", "--no-profile", "--engine", f"native,llama-bench={path}", "-o", str(out),
                 "--resume"]) == 0
    assert len(log.read_text().splitlines()) == 2 and len(load_results(out).frame) == len(f)


def test_a_configuration_the_peer_cannot_run_is_reported(fake_llama_bench, tmp_path, tiny_model_path, capsys):
    path, _ = fake_llama_bench
    out = tmp_path / "r"
    rc = main(["sweep", "--model", str(tiny_model_path), "-t", "1,3", "--force", "--pp", "8", "--tg", "0", "-r", "1",
               "--no-profile", "--engine", f"llama-bench={path}", "-o", str(out)])
    captured = capsys.readouterr()
    assert rc == 0
    assert "llama.cpp could not run" in captured.err and "cannot run 3 threads" in captured.err
    assert "1 peer configuration(s) did not run" in captured.out
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["peer_failures"][0]["engine"] == "llama.cpp" and "t3" in prov["peer_failures"][0]["config"]
    f = load_results(out).frame
    assert set(f["engine"]) == {"llama.cpp"} and list(f["n_threads"].astype(int)) == [1]   # ours not asked
    assert main(["report", str(out), "-o", str(tmp_path / "html")]) == 0
    page = (tmp_path / "html" / "index.html").read_text()
    assert "Peer configurations that did not run" in page and "cannot run 3 threads" in page


def test_bad_engine_flags_are_exit_2(tmp_path, capsys, tiny_model_path):
    assert main(["sweep", "--model", str(tiny_model_path), "--engine", "llama-bench=/no/such", "-o",
                 str(tmp_path / "r")]) == 2
    assert "not an executable file" in capsys.readouterr().err


def test_bench_runs_a_peer_right_after_ours(fake_llama_bench, tiny_model_path, capsys):
    path, log = fake_llama_bench
    assert main(["bench", str(tiny_model_path), "-p", "8", "-n", "4", "-r", "1", "-t", "1", "--engine",
                 f"native,llama-bench={path}", "-o", "json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [(r["engine"], r["n_prompt"], r["n_gen"]) for r in recs] == [
        ("qwen35-harness", 8, 0), ("qwen35-harness", 0, 4), ("llama.cpp", 8, 0), ("llama.cpp", 0, 4)]
    assert main(["bench", str(tiny_model_path), "-p", "8", "-n", "4", "-r", "1", "-t", "1", "--engine",
                 f"native,llama-bench={path}"]) == 0
    out = capsys.readouterr().out
    assert "| llama.cpp fake123 | tg4 | 10.00 |" in out
    assert main(["bench", str(tiny_model_path), "--engine", f"llama-bench={path}"]) == 2


def test_ab_measures_a_peer_as_an_arm(fake_llama_bench, tmp_path, monkeypatch, capsys, tiny_model_path):
    """`harness ab llama-bench=PATH HEAD`: the peer's llama-bench is one arm of the interleaved rounds
    (its own fresh process per round); ours is built from HEAD. Here our build is stood in for (a
    measurement of 100 t/s) and the stand-in peer gives 10 t/s: ours is FASTER, exit 0; the other way
    round the peer arm is SLOWER than ours, exit 1."""
    import harness.measure.ab as ab
    import harness.measure.builds as builds
    from harness.measure.builds import Build
    path, log = fake_llama_bench
    monkeypatch.setattr(builds, "build", lambda repo, rev, **kw: Build(rev, tmp_path, True, 0.0))
    monkeypatch.setattr(ab, "bench_process", lambda w, tree, pad=None: {"tg4": 100.0})
    common = [str(tiny_model_path), "-p", "0", "-n", "4", "-r", "1", "-t", "1", "--rounds", "8", "--min-rounds", "8",
              "--aa-rounds", "0", "--threshold", "2%"]
    assert main(["ab", f"llama-bench={path}", "HEAD", *common, "-o", str(tmp_path / "o1")]) == 0
    data = json.loads((tmp_path / "o1" / "ab.json").read_text())
    v = data["verdicts"][0]
    assert v["verdict"] == "faster" and v["ratio"] == pytest.approx(10.0, rel=0.02)
    assert data["builds"][0]["peer"] == "llama.cpp" and len(log.read_text().splitlines()) == 8
    assert main(["ab", "HEAD", f"llama-bench={path}", *common, "-o", str(tmp_path / "o2")]) == 1
    assert "SLOWER" in capsys.readouterr().out
    assert main(["ab", "HEAD", "llama-bench=/no/such/file", *common]) == 2


def test_ab_passes_peer_args_to_the_peer_arm_only(fake_llama_bench, tmp_path, monkeypatch, capsys, tiny_model_path):
    """`harness ab llama-bench=PATH HEAD --peer-args 'llama-bench=-mmp 0'` (as 'ik=-rtr 1'): every
    peer process gets the flags after ours, the table names them; --peer-args without a peer arm,
    for an engine that is not one, or not of the form NAME=ARGS, is a bad argument (exit 2)."""
    import harness.measure.ab as ab
    import harness.measure.builds as builds
    from harness.measure.builds import Build
    path, log = fake_llama_bench
    monkeypatch.setattr(builds, "build", lambda repo, rev, **kw: Build(rev, tmp_path, True, 0.0))
    monkeypatch.setattr(ab, "bench_process", lambda w, tree, pad=None: {"tg4": 100.0})
    common = [str(tiny_model_path), "-p", "0", "-n", "4", "-r", "1", "-t", "1", "--rounds", "8", "--min-rounds", "8",
              "--aa-rounds", "0", "--threshold", "2%"]
    assert main(["ab", f"llama-bench={path}", "HEAD", *common, "--peer-args", "llama-bench=-mmp 0"]) == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 8 and all(c[-4:] == ["-mmp", "0", "-o", "json"] for c in calls)
    assert "-mmp 0" in capsys.readouterr().out
    assert main(["ab", "HEAD", "HEAD", *common, "--peer-args", "ik=-rtr 1"]) == 2
    assert main(["ab", f"llama-bench={path}", "HEAD", *common, "--peer-args", "ik=-rtr 1"]) == 2
    assert main(["ab", f"llama-bench={path}", "HEAD", *common, "--peer-args=-rtr 1"]) == 2
    err = capsys.readouterr().err
    assert "no arm of that engine" in err and "is not NAME=ARGS" in err
