"""Peer engines in a sweep: llama.cpp's and ik_llama.cpp's `llama-bench`, run on the same model
file with the flags that mean what our configuration means, their JSON read into rows of our store.

    harness sweep --engine native,llama-bench=PATH,ik=PATH [--peer-args 'ik=-rtr 1 -fmoe 1'] ...

A peer configuration is (model, threads, u-batch, depth) with the sweep's pp / tg tests and
repetitions: `llama-bench -m MODEL -t T -ub U -d D -p P -n N -r R -o json` (no -d where D is 0, so
builds without it still run; ik_llama.cpp's has no -d). The ISA, fused delta-net threshold and vocab
strategy are ours only: a peer runs once per peer configuration, right after the first of our
points that share it, so the two engines are measured minutes apart, interleaved, not an hour. The
peer's own settings (flash_attn, type_k/v, n_batch, -rtr, ...) are whatever its defaults and
--peer-args make them; its JSON records them and the store keeps them (engine_settings).

A configuration a peer cannot run (it exits non-zero, prints no records, or lacks a flag) is
reported: a warning line with the peer's last error line, and an entry in provenance.json
(peer_failures), which the report lists."""
from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError, UsageError

NATIVE = "native"
ENGINE_NAMES = {"llama-bench": "llama.cpp", "llama.cpp": "llama.cpp", "ik": "ik_llama.cpp",
                "ik_llama.cpp": "ik_llama.cpp", "ik-llama-bench": "ik_llama.cpp"}


@dataclass(frozen=True)
class PeerEngine:
    engine: str                     # llama.cpp or ik_llama.cpp: the store's engine column
    binary: str                     # path of its llama-bench
    extra: tuple[str, ...] = ()     # --peer-args for it

    @property
    def label(self) -> str:
        return f"{self.engine} ({self.binary})"


@dataclass
class PeerFailure:
    engine: str
    config: str                     # what was asked: model, threads, ubatch, depth, tests
    reason: str

    def as_dict(self) -> dict:
        return {"engine": self.engine, "config": self.config, "reason": self.reason}


@dataclass(frozen=True)
class EngineChoice:
    native: bool = True
    peers: tuple[PeerEngine, ...] = field(default_factory=tuple)


def peer_args_by_engine(peer_args: list[str] | None) -> dict[str, tuple[str, ...]]:
    """--peer-args items 'NAME=ARGS' -> {engine: its flags}; UsageError for an item not of that form
    (NAME as in --engine) or flags that do not split as a shell would."""
    extra: dict[str, tuple[str, ...]] = {}
    for item in peer_args or []:
        name, sep, args = item.partition("=")
        if not sep or name not in ENGINE_NAMES:
            raise UsageError(f"--peer-args: {item!r} is not NAME=ARGS (NAME: llama-bench or ik)")
        try:
            extra[ENGINE_NAMES[name]] = tuple(shlex.split(args))
        except ValueError as e:
            raise UsageError(f"--peer-args {name}: {e}") from None
    return extra


def parse_engines(text: str | None, peer_args: list[str] | None = None) -> EngineChoice:
    """'native,llama-bench=/path/llama-bench,ik=/path/ik/llama-bench' -> EngineChoice; peer_args
    items are 'NAME=ARGS' (NAME as in --engine). UsageError (a bad argument) for an unknown name, a
    path that is not an executable file, or args for an engine not chosen."""
    if not text:
        text = NATIVE
    native, peers = False, []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            raise UsageError(f"--engine: empty item in {text!r}")
        if item == NATIVE:
            native = True
            continue
        name, sep, path = item.partition("=")
        if not sep or name not in ENGINE_NAMES:
            raise UsageError(f"--engine: {item!r} is not 'native', 'llama-bench=PATH' or 'ik=PATH'")
        p = Path(path).expanduser()
        if not p.is_file() or not os.access(p, os.X_OK):
            raise UsageError(f"--engine {name}: {path!r} is not an executable file (the peer's llama-bench)")
        peers.append((name, str(p)))
    extra = peer_args_by_engine(peer_args)
    for engine in extra:
        if engine not in {ENGINE_NAMES[n] for n, _ in peers}:
            raise UsageError(f"--peer-args {engine}: that engine is not in --engine")
    engines = [ENGINE_NAMES[n] for n, _ in peers]
    if len(set(engines)) != len(engines):
        raise UsageError("--engine: each peer engine once (llama-bench=PATH, ik=PATH)")
    return EngineChoice(native, tuple(PeerEngine(ENGINE_NAMES[n], p, extra.get(ENGINE_NAMES[n], ()))
                                      for n, p in peers))


def peer_command(peer: PeerEngine, model: str, threads: int, ubatch: int, depth: int,
                 tests: list[tuple[int, int]], repetitions: int) -> list[str]:
    """llama-bench's command line for one peer configuration: every pp length as -p, every tg length
    as -n (llama-bench runs each as its own test, as we do), -o json."""
    pp = [str(p) for p, _ in tests if p]
    tg = [str(g) for _, g in tests if g]
    cmd = [peer.binary, "-m", model, "-t", str(threads), "-ub", str(ubatch), "-r", str(repetitions),
           "-p", ",".join(pp) if pp else "0", "-n", ",".join(tg) if tg else "0"]
    if depth:
        cmd += ["-d", str(depth)]
    return cmd + list(peer.extra) + ["-o", "json"]


def run_peer(peer: PeerEngine, cmd: list[str], timeout: float | None = None) -> list[dict]:
    """The peer's records (llama-bench JSON) for one configuration; HarnessError with its last
    error line when it fails or prints none. Records with n_prompt and n_gen both 0 (llama-bench's
    '-p 0' placeholder) are dropped."""
    from harness.store.llama_bench import parse_records_text
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"{peer.engine}: no answer within {timeout:.0f} s") from None
    except OSError as e:
        raise HarnessError(f"{peer.engine}: cannot run {cmd[0]}: {e.strerror or e}") from None
    last = next((ln.strip() for ln in reversed(r.stderr.splitlines()) if ln.strip()), "")
    if r.returncode != 0:
        raise HarnessError(f"{peer.engine} exited with status {r.returncode}" + (f": {last}" if last else ""))
    try:
        recs = parse_records_text(r.stdout, f"{peer.engine} output")
    except HarnessError as e:
        raise HarnessError(f"{e}" + (f" (its last error line: {last})" if last else "")) from None
    recs = [x for x in recs if int(x.get("n_prompt", 0) or 0) or int(x.get("n_gen", 0) or 0)]
    if not recs:
        raise HarnessError(f"{peer.engine} printed no test records" + (f": {last}" if last else ""))
    return recs
