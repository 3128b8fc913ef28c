"""perf stat as a counter backend: whether this machine lets perf count user-space instructions,
the command line that counts a child process, and the count read back from perf's CSV output
(`perf stat -x, -e instructions:u -o FILE -- COMMAND`).

On a VM without a virtual PMU (this project's development VM) perf answers `<not supported>` for
every hardware event, whatever perf_event_paranoid says; perf_unavailable_reason() then says so."""
from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

PERF_EVENT = "instructions:u"
PARANOID = Path("/proc/sys/kernel/perf_event_paranoid")


def paranoid_level() -> int | None:
    """/proc/sys/kernel/perf_event_paranoid (None where it cannot be read): 2 lets a user count
    their own processes' user-space events, above 2 (Debian's 3) forbids perf to users."""
    try:
        return int(PARANOID.read_text().strip())
    except (OSError, ValueError):
        return None


def parse_perf_count(text: str, event: str = PERF_EVENT) -> int | None:
    """The count of `event` in perf stat's -x, output, None when perf could not count it
    (`<not supported>`, `<not counted>`) or did not report it."""
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) >= 3 and fields[2].strip() == event:
            try:
                return int(fields[0])
            except ValueError:
                return None
    return None


def perf_command(perf: str, out_file: str | Path, argv: list[str]) -> list[str]:
    """perf stat counting user-space instructions of argv, its CSV report written to out_file."""
    return [perf, "stat", "-x,", "-e", PERF_EVENT, "-o", str(out_file), "--", *argv]


@functools.cache
def perf_unavailable_reason() -> str | None:
    """Why perf cannot count instructions here, in one clause; None when it can (checked once per
    process by counting `true`)."""
    perf = shutil.which("perf")
    if perf is None:
        return "perf is not installed"
    level = paranoid_level()
    where = f"perf_event_paranoid={level}" if level is not None else "perf_event_paranoid unreadable"
    if level is not None and level > 2:
        return f"{where} forbids perf to users (needs <= 2)"
    try:
        r = subprocess.run([perf, "stat", "-x,", "-e", PERF_EVENT, "--", "true"], capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"perf stat does not run ({e})"
    if parse_perf_count(r.stderr) is None:
        said = next((f.split(",")[0] for f in r.stderr.splitlines() if PERF_EVENT in f), r.stderr.strip()[-80:])
        return (f"perf stat cannot count {PERF_EVENT} here: it says {said!s} with {where}, so this machine "
                f"exposes no hardware counters (a VM without a virtual PMU)")
    return None
