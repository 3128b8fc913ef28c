"""Built copies of revisions of this project, cached: what `harness ab` measures.

A revision is a git commit (anything `git rev-parse` takes) or WORKTREE, the working tree as it is
now, uncommitted changes and untracked files included (ignored files are not). Each is exported
once into its own directory under <cache>/builds/ (`git archive` of the commit, or a copy of the
working tree's files) and built there with the build command (the C extension in place), then
reused by every later run. The directory is keyed by what it was built from and how:

    <commit sha or worktree-<content hash>>-<hash of build command, compiler, flags, Python>

so a new commit, a changed file in the working tree, another CC/CFLAGS/LDFLAGS or another Python
gets its own build. The C extension is also cached on its own, keyed by the content of what it is
built from (native/, setup.py, pyproject.toml) and the same flags: a commit that changes only Python
code reuses the extension of one that changed no C, which makes planted Python-only commits cheap.

A build is made in a temporary directory and renamed into place, so a killed build leaves nothing
that a later run would mistake for a good one.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.cache import cache_dir
from harness.errors import HarnessError, UsageError
from harness.provenance import now_iso

WORKTREE = "WORKTREE"
DEFAULT_BUILD = "{python} setup.py build_ext --inplace"
EXTENSION_INPUTS = ("native/", "setup.py", "pyproject.toml")   # what the C extension is built from
EXTENSION_GLOB = "harness/_native*.so"
FLAG_VARIABLES = ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS", "ARCHFLAGS")


class BuildError(HarnessError):
    """A revision could not be exported or built."""


@dataclass(frozen=True)
class Revision:
    spec: str      # as given: a git revision or WORKTREE
    ident: str     # the commit sha, or worktree-<hash of the files' content>
    label: str     # what tables show: "HEAD~1 (1a2b3c4d)", "WORKTREE (+3 changed)"

    @property
    def short(self) -> str:
        return self.ident[:8] if not self.ident.startswith("worktree-") else self.ident[:17]


def _git(repo: Path, *args: str, binary: bool = False):
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=not binary)
    if r.returncode != 0:
        err = r.stderr if not binary else r.stderr.decode(errors="replace")
        raise BuildError(f"git {' '.join(args)} failed: {err.strip().splitlines()[-1:] or r.returncode}")
    return r.stdout


def worktree_files(repo: Path) -> list[str]:
    """The working tree's files as git sees them: tracked (present) and untracked, not ignored."""
    out = _git(repo, "ls-files", "-co", "--exclude-standard", "-z")
    return sorted(f for f in set(out.split("\0")) if f and (repo / f).is_file())


def _content_hash(root: Path, files: list[str]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode() + b"\0")
        h.update(hashlib.sha256((root / f).read_bytes()).digest())
    return h.hexdigest()


def resolve_revision(repo: Path, spec: str) -> Revision:
    """A commit's sha, or the content hash of the working tree for WORKTREE."""
    if spec == WORKTREE:
        files = worktree_files(repo)
        changed = [ln for ln in _git(repo, "status", "--porcelain").splitlines() if ln.strip()]
        return Revision(spec, "worktree-" + _content_hash(repo, files)[:16],
                        f"{WORKTREE} ({len(changed)} changed)" if changed else f"{WORKTREE} (clean)")
    r = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise UsageError(f"{spec!r} is not a commit in {repo} (or use {WORKTREE} for the working tree)")
    sha = r.stdout.strip()
    return Revision(spec, sha, spec if spec.startswith(sha[:7]) else f"{spec} ({sha[:8]})")


def flags_key(build_command: str) -> str:
    """What, besides the sources, changes a build: the command, compiler and flags, the Python."""
    parts = [build_command, sys.version, sys.executable, platform.machine()]
    parts += [f"{v}={os.environ.get(v, '')}" for v in FLAG_VARIABLES]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def export(repo: Path, rev: Revision, dest: Path) -> None:
    """The revision's files into dest (a new directory)."""
    dest.mkdir(parents=True)
    if rev.spec == WORKTREE:
        for f in worktree_files(repo):
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / f, dest / f)
        return
    data = _git(repo, "archive", "--format=tar", rev.ident, binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(dest)


def extension_key(tree: Path, fkey: str) -> str:
    files = []
    for inp in EXTENSION_INPUTS:
        p = tree / inp
        if p.is_dir():
            files += sorted(str(q.relative_to(tree)) for q in p.rglob("*") if q.is_file())
        elif p.is_file():
            files.append(inp)
    return _content_hash(tree, files)[:16] + "-" + fkey


@dataclass(frozen=True)
class Build:
    revision: Revision
    path: Path
    reused: bool          # found in the cache
    seconds: float        # what building took (0 when reused)
    extension_reused: bool = False


def _run_build(tree: Path, command: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.run(command.format(python=sys.executable), shell=True, cwd=tree, env=env,
                          capture_output=True, text=True)


def build(repo: Path, rev: Revision, *, build_command: str = DEFAULT_BUILD, rebuild: bool = False,
          root: Path | None = None, log=lambda s: None) -> Build:
    """The revision exported and built under <cache>/builds, reusing what is already there."""
    root = root or (cache_dir() / "builds")
    fkey = flags_key(build_command)
    path = root / f"{rev.ident}-{fkey}"
    if path.is_dir() and (path / "build.json").is_file() and not rebuild:
        return Build(rev, path, True, 0.0)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{path.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.monotonic()
    try:
        export(repo, rev, tmp)
        ekey = extension_key(tmp, fkey)
        ext_dir = root.parent / "extensions" / ekey
        ext_reused = ext_dir.is_dir() and any(ext_dir.iterdir()) and not rebuild
        if ext_reused:
            for so in ext_dir.iterdir():
                shutil.copy2(so, tmp / "harness" / so.name)
            log(f"build {rev.label}: C extension reused ({ekey[:16]})")
        elif build_command:
            log(f"build {rev.label}: building in {path} ...")
            r = _run_build(tmp, build_command)
            if r.returncode != 0:
                tail = (r.stderr + r.stdout).strip().splitlines()[-1:] or ["(no output)"]
                raise BuildError(f"building {rev.label} failed: {tail[0][:200]}")
            built = sorted(tmp.glob(EXTENSION_GLOB))
            if built:
                ext_tmp = ext_dir.with_name(f".{ekey}.{os.getpid()}.tmp")
                shutil.rmtree(ext_tmp, ignore_errors=True)
                ext_tmp.mkdir(parents=True)
                for so in built:
                    shutil.copy2(so, ext_tmp / so.name)
                shutil.rmtree(ext_dir, ignore_errors=True)
                os.replace(ext_tmp, ext_dir)
        seconds = time.monotonic() - t0
        (tmp / "build.json").write_text(json.dumps({
            "revision": rev.spec, "ident": rev.ident, "built": now_iso(), "seconds": round(seconds, 1),
            "build_command": build_command, "extension_key": ekey, "extension_reused": ext_reused}, indent=1))
        if path.exists():            # rebuild, or another run built it meanwhile
            shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
        return Build(rev, path, False, seconds, ext_reused)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
