"""Peak resident memory of this process, per measurement where the OS allows it.

getrusage's ru_maxrss is a high-water mark of the whole process: on its own it only grows, so a
sweep would report each configuration's peak as the largest so far. On Linux writing 5 to
/proc/self/clear_refs resets that mark to the current RSS, which makes it a per-measurement peak;
elsewhere (or when /proc is read-only) the value stays the process high-water mark."""
from __future__ import annotations

import resource
import sys

METHOD_RESET = "ru_maxrss, reset before each test (Linux clear_refs)"
METHOD_PROCESS = "ru_maxrss, process high-water mark (not reset between tests)"


def reset_peak() -> bool:
    """Reset the process high-water mark to the current RSS; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kb) if sys.platform == "darwin" else int(kb) * 1024    # macOS reports bytes
