"""Where a measurement came from: commit, machine, build."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> tuple[str, bool]:
    """(commit sha or 'unknown', dirty flag) of the source tree this package runs from."""
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5).stdout.strip())
        return (sha or "unknown"), dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def cpu_flags() -> list[str]:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith(("flags", "Features")):
                return sorted(line.split(":", 1)[1].split())
    except OSError:
        pass
    return []


def compiler_info() -> dict:
    """The C compiler the extension is built with and the flags it gets: Python's CC and CFLAGS
    (cffi passes them) plus the extra flags of native/ffi_build.py when the source tree is here."""
    import re
    import sysconfig
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    try:
        version = subprocess.run([cc[0], "--version"], capture_output=True, text=True,
                                 timeout=5).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "unknown"
    extra = ""
    build = ROOT / "native" / "ffi_build.py"
    if build.exists():
        m = re.search(r"extra_compile_args=\[([^\]]*)\]", build.read_text())
        extra = " ".join(a.strip().strip("'\"") for a in m.group(1).split(",")) if m else ""
    return {"cc": " ".join(cc), "cc_version": version, "cflags": sysconfig.get_config_var("CFLAGS") or "",
            "extra_compile_args": extra}


def machine_provenance() -> dict:
    """Machine and build facts recorded with every results directory."""
    import sys

    import numpy as np

    from harness.version import __version__
    from harness.native import cpu_features
    commit, dirty = git_commit()
    feats = cpu_features()
    return {
        "created": now_iso(), "commit": commit, "dirty": dirty, "version": __version__,
        "compiler": compiler_info(), "isa_compiled": feats["compiled"], "isa_supported": feats["supported"],
        "isa_best": feats["best"], "kernel_tables": feats["tables"], "cpu_model": cpu_model(), "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(), "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "os": platform.platform(), "hostname": platform.node(), "python": sys.version.split()[0],
        "numpy": np.__version__, "load_avg": load_average(), "argv": sys.argv,
    }
