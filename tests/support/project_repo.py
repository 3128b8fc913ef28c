"""Throwaway git repositories for the tests of harness bisect and asv find: git helpers, a one-commit copy
of this project, and a planted slowdown in a Session method."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SESSION_SOURCE = "harness/engine/session.py"   # where Session lives
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1"}

# the last line of each Session method a slowdown can be planted in. The tg figures do not all time the
# same step: `harness bench` (and so harness bisect) calls decode_top1, asv's time_tg16 calls decode.
RETURN_LINES = {
    "decode_top1": "        return int(self.prefill_top1([token], all_positions=False)[0])\n",
    "decode": "        return self.prefill([token], all_logits=False)\n",
}
SLEEP = "        __import__('time').sleep(0.02)  # planted slowdown\n"


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def commit(repo, message, write=None, remove=()):
    for name, text in (write or {}).items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    for name in remove:
        (repo / name).unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def copy_working_tree(dest: Path) -> None:
    """This working tree's files (tracked and untracked, not ignored) into dest."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of this project")
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                           check=True, capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)


def project_copy(dest: Path) -> Path:
    """This working tree's files as a fresh one-commit repo."""
    copy_working_tree(dest)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "base")
    return dest


def plant_sleep(repo: Path, method: str = "decode_top1") -> str:
    """Commit a 20 ms sleep per call just before the return of Session.<method>; the commit's hash."""
    engine = repo / SESSION_SOURCE
    text = engine.read_text()
    line = RETURN_LINES[method]
    assert text.count(line) == 1, f"Session.{method} changed: update the planted slowdown in tests/project_repo.py"
    return commit(repo, f"planted slowdown in Session.{method}", {SESSION_SOURCE: text.replace(line, SLEEP + line)})
