"""Writes that cannot be half-done and a lock that a killed process cannot leave held.

atomic_write_text: the new content goes to a temporary file in the same directory, is flushed to
disk, then renamed over the target (os.replace is atomic on POSIX), so a reader sees the old file
or the new one, never a mix, whatever moment the writer dies at.

DirLock: an exclusive fcntl.flock on DIR/.lock. The kernel drops the lock when its process dies,
even by SIGKILL, so a lock file left by a killed sweep is simply taken over by the next one; the
pid and start time written into the file are only there to name the holder in the error message.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from pathlib import Path

from harness.errors import HarnessError, ResultsLockedError
from harness.provenance import now_iso

TMP_SUFFIX = ".tmp"


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


def remove_stale_temps(d: str | os.PathLike) -> list[str]:
    """Delete temporary files a killed writer left behind (call only while holding the lock)."""
    gone = []
    for p in Path(d).glob(f".*{TMP_SUFFIX}"):
        p.unlink(missing_ok=True)
        gone.append(p.name)
    return gone


class DirLock:
    """Exclusive lock on a directory for the lifetime of one writer.

        with DirLock(d):     # ResultsLockedError if a live process holds it
            ...
    """

    NAME = ".lock"

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.path = self.dir / self.NAME
        self._fd: int | None = None
        self.previous: dict | None = None   # what a dead holder left in the file, if anything

    def acquire(self) -> DirLock:
        self.dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ResultsLockedError(self._held_message()) from None
                raise HarnessError(f"cannot lock {self.path}: {e.strerror}") from None
            # the holder before us may have unlinked the file between our open and flock:
            # then we locked an orphan inode and must start again on the current path
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.previous = _read_holder(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)   # unlink while still locked, then unlock
        finally:
            os.close(self._fd)
            self._fd = None

    def _held_message(self) -> str:
        holder = ""
        try:
            info = json.loads(self.path.read_text() or "{}")
            holder = f" (pid {info.get('pid')} on {info.get('host')}, since {info.get('since')})"
        except (OSError, ValueError):
            pass
        return (f"{self.dir} is being written by another process{holder}; "
                f"wait for it to finish or use another output directory")

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_holder(fd: int) -> dict | None:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data) if data.strip() else None
    except (OSError, ValueError):
        return None
