"""Where baselines live, whatever the current directory: $HARNESS_BASELINES; else reports/baselines
at the root of the checkout of this project that holds the current directory; else the user's data
directory ($XDG_DATA_HOME or ~/.local/share, then qwen35-harness/baselines). `baseline save`,
`baseline list` and `compare NAME` agree on it, and a missing baseline's error says where it looked.
Every test works in tmp_path (a fake checkout, a fake home): nothing is written into this repository."""

import pytest

import support.results_factory as rf
from harness.cli import main
from harness.store import baselines
from support.paths import ROOT


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A fake checkout of the project with a subfolder, a folder outside any checkout, a fake home
    and data directory, and two result directories (NEW 20% slower in tg16)."""
    monkeypatch.delenv("HARNESS_BASELINES", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    proj = tmp_path / "proj"
    (proj / "harness").mkdir(parents=True)
    (proj / "docs" / "notes").mkdir(parents=True)
    (proj / "asv.conf.json").write_text('{"version": 1, "project": "qwen35-harness"}\n')
    (proj / "pyproject.toml").write_text('[project]\nname = "qwen35-harness"\n')
    outside = tmp_path / "outside"
    outside.mkdir()
    tight = [100.0, 100.5, 99.5, 100.2, 99.8, 100.1]

    def runs(scale=1.0, **kw):       # three runs per configuration: a verdict needs the between-run spread
        return [rf.row(samples=[x * scale * f for x in tight], test_time=f"2026-11-23T10:0{i}:00+00:00", **kw)
                for i, f in enumerate((1.0, 1.01, 0.99))]
    base = rf.frame(runs(n_gen=16) + runs(n_prompt=64, n_gen=0))
    new = rf.frame(runs(0.8, n_gen=16, commit="b" * 40) + runs(n_prompt=64, n_gen=0, commit="b" * 40))
    return {"proj": proj, "sub": proj / "docs" / "notes", "outside": outside, "tmp": tmp_path,
            "base": rf.write_dir(tmp_path / "runs" / "base", base),
            "new": rf.write_dir(tmp_path / "runs" / "new", new)}


def test_compare_finds_a_baseline_from_any_folder_of_the_checkout(world, monkeypatch, capsys):
    monkeypatch.chdir(world["sub"])
    assert main(["baseline", "save", "before", str(world["base"])]) == 0
    saved = world["proj"] / "reports" / "baselines" / baselines.machine_key() / "before"
    assert str(saved) in capsys.readouterr().out                  # the save says where it went
    assert (saved / "results.csv").is_file()
    for cwd in (world["proj"], world["proj"] / "harness", world["sub"]):
        monkeypatch.chdir(cwd)
        assert main(["compare", "before", str(world["new"])]) == 1, cwd
        out = capsys.readouterr().out
        assert "baseline before" in out and "SLOWER" in out
        assert main(["baseline", "list"]) == 0
        assert str(saved) in capsys.readouterr().out
    assert not (world["sub"] / "reports").exists()


def test_outside_a_checkout_baselines_live_in_the_user_data_directory(world, monkeypatch, capsys):
    monkeypatch.chdir(world["outside"])
    assert main(["baseline", "save", "before", str(world["base"])]) == 0
    saved = world["tmp"] / "xdg" / "qwen35-harness" / "baselines" / baselines.machine_key() / "before"
    assert str(saved) in capsys.readouterr().out and (saved / "results.csv").is_file()
    assert not (world["outside"] / "reports").exists()
    elsewhere = world["tmp"] / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert main(["compare", "before", str(world["new"])]) == 1
    assert "baseline before" in capsys.readouterr().out
    assert main(["baseline", "list"]) == 0
    assert str(saved) in capsys.readouterr().out


def test_the_data_directory_defaults_to_local_share_under_home(world, monkeypatch):
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.chdir(world["outside"])
    assert baselines.baselines_root() == world["tmp"] / "home" / ".local" / "share" / "qwen35-harness" / "baselines"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")       # not absolute: ignored, as the XDG spec says
    assert baselines.baselines_root() == world["tmp"] / "home" / ".local" / "share" / "qwen35-harness" / "baselines"


def test_harness_baselines_overrides_everything(world, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_BASELINES", str(world["tmp"] / "mine"))
    for cwd in (world["sub"], world["outside"]):
        monkeypatch.chdir(cwd)
        assert baselines.baselines_root() == world["tmp"] / "mine"
    assert main(["baseline", "save", "b1", str(world["base"])]) == 0
    assert (world["tmp"] / "mine" / baselines.machine_key() / "b1" / "results.csv").is_file()


def test_a_folder_that_is_not_this_project_is_not_taken_for_its_checkout(world, monkeypatch):
    other = world["tmp"] / "other"
    (other / "harness").mkdir(parents=True)
    (other / "asv.conf.json").write_text("{}")
    (other / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    monkeypatch.chdir(other / "harness")
    assert baselines.baselines_root() == world["tmp"] / "xdg" / "qwen35-harness" / "baselines"


@pytest.mark.parametrize("where", ["sub", "outside"])
def test_a_missing_baseline_error_says_where_it_looked(world, monkeypatch, capsys, where):
    monkeypatch.chdir(world[where])
    root = (world["proj"] / "reports" / "baselines" if where == "sub"
            else world["tmp"] / "xdg" / "qwen35-harness" / "baselines")
    assert main(["compare", "nope", str(world["new"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no baseline 'nope'" in err[0] and str(root) in err[0], err
    assert "HARNESS_BASELINES" in err[0]                         # and how to look elsewhere
    assert main(["baseline", "list"]) == 0
    assert f"no baselines under {root / baselines.machine_key()}" in capsys.readouterr().out


def test_this_repository_is_recognised_from_its_subfolders(monkeypatch):
    """Read only: the real checkout's reports/baselines is where a developer's baselines go."""
    monkeypatch.delenv("HARNESS_BASELINES", raising=False)
    monkeypatch.chdir(ROOT / "tests" / "store")
    assert baselines.project_root() == ROOT
    assert baselines.baselines_root() == ROOT / "reports" / "baselines"


def test_a_baseline_left_under_the_current_directory_is_pointed_to(world, monkeypatch, capsys):
    """Saves used to go to ./reports/baselines of whatever folder one was in: the error names it."""
    monkeypatch.chdir(world["outside"])
    monkeypatch.setenv("HARNESS_BASELINES", str(world["outside"] / "reports" / "baselines"))
    assert main(["baseline", "save", "old", str(world["base"])]) == 0
    monkeypatch.delenv("HARNESS_BASELINES")
    capsys.readouterr()
    assert main(["compare", "old", str(world["new"])]) == 2
    err = capsys.readouterr().err
    assert str(world["outside"] / "reports" / "baselines" / baselines.machine_key() / "old") in err
    assert f"HARNESS_BASELINES={world['outside'] / 'reports' / 'baselines'}" in err
