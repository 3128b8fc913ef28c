"""Saved baselines: a copy of a results directory under <root>/<machine-key>/<NAME>/, so later runs
on the same kind of machine can be compared with it by name.

The root is the same from any current directory (locate_root): $HARNESS_BASELINES when set; else
reports/baselines at the root of the checkout of this project that holds the current directory;
else the user's data directory, $XDG_DATA_HOME/qwen35-harness/baselines (~/.local/share/... by
default).

The machine key is the CPU model and core count the results were measured on, lower-cased with
every run of other characters turned into '-' (e.g. `amd-epyc-7b13-64-core-processor-2cores`).
A save is atomic: the copy is made in a hidden temporary directory beside the target and renamed
into place, under the lock of the machine directory. An existing baseline is replaced only with
force=True (the old one is renamed aside first and removed once the new one is in place).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.atomic import DirLock
from harness.errors import HarnessError, UsageError
from harness.provenance import cpu_model, now_iso

FILES = ("results.csv", "profile.csv", "quality.csv", "provenance.json")
META = "baseline.json"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class BaselineExistsError(HarnessError):
    """A baseline of that name is already saved for this machine (replace it with --force)."""


class BaselineNotFoundError(HarnessError):
    """No baseline of that name for this machine."""


@dataclass(frozen=True)
class Baseline:
    name: str
    machine: str
    path: Path
    meta: dict


PROJECT = "qwen35-harness"


def project_root(start: Path | None = None) -> Path | None:
    """The root of the checkout of this project that holds `start` (default: the current directory):
    the nearest folder up from it with asv.conf.json, harness/ and a pyproject.toml naming the
    project; None outside any."""
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:                          # the current directory was removed
        return None
    for d in (here, *here.parents):
        if (d / "asv.conf.json").is_file() and (d / "harness").is_dir() and (d / "pyproject.toml").is_file():
            try:
                if re.search(rf"""^name\s*=\s*["']{PROJECT}["']""", (d / "pyproject.toml").read_text(),
                             re.MULTILINE):
                    return d
            except (OSError, UnicodeDecodeError):
                pass
    return None


def user_data_root() -> Path:
    """$XDG_DATA_HOME/qwen35-harness/baselines ($XDG_DATA_HOME when set and absolute, else
    ~/.local/share)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / PROJECT / "baselines"


def locate_root() -> tuple[Path, str]:
    """Where baselines live and why there: $HARNESS_BASELINES; else reports/baselines at the root of
    the project checkout holding the current directory; else the user's data directory."""
    env = os.environ.get("HARNESS_BASELINES")
    if env:
        return Path(env), "set by $HARNESS_BASELINES"
    root = project_root()
    if root is not None:
        return root / "reports" / "baselines", "the checkout holding the current directory; $HARNESS_BASELINES overrides"
    return user_data_root(), "outside a checkout: the user data directory; $HARNESS_BASELINES overrides"


def baselines_root() -> Path:
    """The folder that holds every machine's baselines (see locate_root)."""
    return locate_root()[0]


def sanitize(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:96] or "unknown"


def machine_key(cpu: str | None = None, cores: int | None = None) -> str:
    """Key of a machine kind: CPU model + core count (this machine's when not given)."""
    cpu = cpu or cpu_model()
    if cores is None and cpu == cpu_model():
        cores = os.cpu_count()
    return sanitize(f"{cpu} {cores}cores" if cores else f"{cpu} unknown-cores")


def machine_key_of(frame, provenance: dict) -> str:
    """The machine key of a result set: from its provenance, else the commonest cpu_info of its rows."""
    cpu = provenance.get("cpu_model") or provenance.get("cpu_info")
    if not cpu and "cpu_info" in frame.columns and len(frame):
        cpu = Counter(str(c) for c in frame["cpu_info"]).most_common(1)[0][0]
    cores = None
    for k in ("core_count", "cores", "cpu_count", "n_cores"):
        if isinstance(provenance.get(k), int):
            cores = provenance[k]
            break
    return machine_key(cpu or None, cores)


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name or ""):
        raise UsageError(f"baseline name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def save(name: str, results_dir: str | os.PathLike | list, *, force: bool = False,
         root: Path | None = None) -> Baseline:
    """Copy the results directory `results_dir` to the baseline NAME of the machine it was measured on.
    A list of directories (several runs of the same configurations) is saved as one baseline whose
    results.csv holds every run's rows, so a later compare has the spread between them."""
    from harness.store.results import csv_text, load_many, load_results
    check_name(name)
    dirs = [Path(d) for d in (results_dir if isinstance(results_dir, (list, tuple)) else [results_dir])]
    for src in dirs:
        if not (src / "results.csv").is_file():
            raise UsageError(f"{src}: not a results directory (no results.csv)")
    if len(dirs) == 1:
        rs = load_results(dirs[0])                   # refuses a damaged store, naming the file
    else:
        rs = load_many(dirs)
        rs.frame = rs.frame.drop(columns=["source"])
    if len(rs.frame) == 0:
        raise HarnessError(f"{', '.join(map(str, dirs))}: holds no results; nothing to save")
    provs = list(rs.provenance.get("sources", {}).values()) if len(dirs) > 1 else [rs.provenance]
    machines = {machine_key_of(load_results(d).frame, p) for d, p in zip(dirs, provs)} if len(dirs) > 1 else set()
    if len(machines) > 1:
        raise UsageError(f"the runs were measured on different machines ({', '.join(sorted(machines))}): "
                         "a baseline holds one machine's runs")
    machine = machines.pop() if machines else machine_key_of(rs.frame, rs.provenance)
    mdir = (root or baselines_root()) / machine
    final = mdir / name
    with DirLock(mdir):
        if final.exists() and not force:
            raise BaselineExistsError(f"baseline {name!r} already exists at {final}; "
                                      "use --force to replace it")
        _remove_temporaries(mdir)
        tmp = mdir / f".{name}.{os.getpid()}.tmp"
        tmp.mkdir()
        try:
            if len(dirs) == 1:
                for f in FILES:
                    if (dirs[0] / f).is_file():
                        shutil.copy2(dirs[0] / f, tmp / f)
            else:
                (tmp / "results.csv").write_text(csv_text(rs.frame))
                (tmp / "provenance.json").write_text(json.dumps(rs.provenance, indent=1))
            meta = {"name": name, "machine": machine, "saved": now_iso(),
                    "source": str(dirs[0].resolve()) if len(dirs) == 1 else [str(d.resolve()) for d in dirs],
                    "runs": len(dirs), "rows": len(rs.frame), "commits": sorted(set(map(str, rs.frame["commit"])))}
            (tmp / META).write_text(json.dumps(meta, indent=1))
            _fsync_tree(tmp)
            if final.exists():
                old = mdir / f".{name}.{os.getpid()}.old"
                os.rename(final, old)
                os.rename(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Baseline(name, machine, final, meta)


def _remove_temporaries(mdir: Path) -> None:
    """Half-made copies a killed save left behind (only called while holding the lock)."""
    for p in mdir.glob(".*.tmp"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def _fsync_tree(d: Path) -> None:
    for p in d.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())


def list_baselines(*, all_machines: bool = False, root: Path | None = None) -> list[Baseline]:
    """Saved baselines of this machine (or of every machine), sorted by machine and name."""
    root = root or baselines_root()
    if not root.is_dir():
        return []
    machines = sorted(p for p in root.iterdir() if p.is_dir()) if all_machines else [root / machine_key()]
    out = []
    for m in machines:
        if not m.is_dir():
            continue
        for d in sorted(m.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and (d / "results.csv").is_file():
                out.append(Baseline(d.name, m.name, d, _read_meta(d)))
    return out


def _read_meta(d: Path) -> dict:
    try:
        meta = json.loads((d / META).read_text())
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


def find(name: str, *, root: Path | None = None) -> Baseline:
    """The baseline NAME of this machine; the error says where it looked and names other machines
    that have one."""
    check_name(name)
    why = ""
    if root is None:
        root, how = locate_root()
        why = f" ({how})"
    here = root / machine_key() / name
    if (here / "results.csv").is_file():
        return Baseline(name, machine_key(), here, _read_meta(here))
    elsewhere = [b.machine for b in list_baselines(all_machines=True, root=root) if b.name == name]
    hint = (f"; it exists for {', '.join(elsewhere)} (pass its directory to use it here)" if elsewhere
            else "")
    try:    # saves used to go under the current directory, whatever it was: point to one left there
        old = Path.cwd() / "reports" / "baselines" / machine_key() / name
    except OSError:
        old = None
    if old is not None and old != here and (old / "results.csv").is_file():
        hint += f"; one is at {old} (pass that directory, or set HARNESS_BASELINES={old.parent.parent})"
    raise BaselineNotFoundError(f"no baseline {name!r} for this machine ({machine_key()}) under {root}{why}{hint}")
