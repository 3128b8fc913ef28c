"""Where the harness keeps what it makes once and reuses: synthetic models, machine facts."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$HARNESS_CACHE, else ~/.cache/qwen35-harness (created on first use)."""
    d = Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "qwen35-harness"))
    d.mkdir(parents=True, exist_ok=True)
    return d
