"""Hostile GGUF files: mutated copies of valid models either load into a model whose every
tensor view lies inside the file (and then run: info, a 3-token prefill, one decode step) or
are refused with a HarnessError. Never another exception, a hang (10 s per case), Python
allocations beyond the file size + 1 MiB while loading, or a crash.

Cases per test: HARNESS_FUZZ_EXAMPLES or --fuzz-examples N scales every count below (the
defaults keep the normal run to a few tens of seconds). The number tried is printed in the
"cases tried" section of the pytest summary.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from support import gguf_fuzz_lib as F

LIB = Path(F.__file__)


def _scaled(request, default: int) -> int:
    """default cases, or as many as --fuzz-examples / HARNESS_FUZZ_EXAMPLES ask for."""
    n = request.config.getoption("--fuzz-examples", None) or os.environ.get("HARNESS_FUZZ_EXAMPLES")
    return int(n) if n else default


def _report(record_property, what: str, outcomes: Counter) -> None:
    n = sum(outcomes.values())
    refused = sum(v for k, v in outcomes.items() if k.startswith("refused"))
    top = "; ".join(f"{v} {k}" for k, v in outcomes.most_common(4))
    line = f"{what}: {n} cases, {refused} refused with a clear error, {n - refused} loaded (top: {top})"
    print(line)
    record_property("cases_tried", line)


class Micro:
    """The valid micro model and a place to write its mutated copies."""

    def __init__(self, d: Path):
        self.dir = d
        self.path = F.write_micro_model(d / "micro.gguf")
        self.data = Path(self.path).read_bytes()
        self.layout = F.walk(self.data)
        self.metadata, _ = F.micro_parts()
        self.n = 0

    def write(self, data: bytes) -> str:
        self.n += 1
        p = self.dir / f"case{self.n % 4}.gguf"   # a few names: a failing case's file stays for a moment
        p.write_bytes(data)
        return str(p)


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    return Micro(tmp_path_factory.mktemp("fuzz"))


def _fuzz_settings(n: int):
    return settings(max_examples=n, deadline=timedelta(seconds=5), derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def test_micro_model_is_valid_and_the_layout_walker_sees_every_field(micro):
    assert F.check_file(micro.path) == "loaded, ran"
    kinds = Counter(f.kind for f in micro.layout.fields)
    _, plan = F.micro_parts()
    assert kinds["offset"] == kinds["ndims"] == len(plan) == 28
    assert kinds["dim"] == sum(len(t.shape) for t in plan)
    n_arrays = sum(1 for vtype, _ in micro.metadata.values() if vtype == 9)
    assert kinds["count"] == 2 + n_arrays == 5      # n_tensors, n_kv, and each array's count
    assert micro.layout.data_start % 32 == 0
    # the test's own serializer writes the same bytes as the project's writer
    assert F.with_metadata(micro.data, micro.metadata) == micro.data


def test_mutated_header_bytes(micro, request, record_property):
    """Counts, lengths, types, dims, offsets and the alignment set to edge values; bytes of the
    header, metadata and tensor-info region flipped; bytes inserted or deleted; truncation."""
    outcomes = Counter()

    @_fuzz_settings(_scaled(request, 300))
    @given(st.data())
    def case(data):
        muts = F.draw_mutations(F.HypothesisChooser(data), micro.layout)
        note("; ".join(map(str, muts)))
        outcomes[F.check_file(micro.write(F.apply_all(micro.data, muts)))] += 1

    case()
    _report(record_property, "header byte mutations (micro model)", outcomes)
    assert sum(outcomes.values()) >= min(_scaled(request, 300), 100)
    assert any(k.startswith("refused") for k in outcomes)


def test_metadata_values_of_the_wrong_type_or_range(micro, request, record_property):
    """Metadata entries replaced by values of another GGUF type (arrays, nested arrays, NaN,
    infinities, huge or negative integers, odd strings), removed, or added."""
    outcomes = Counter()

    @_fuzz_settings(_scaled(request, 200))
    @given(st.data())
    def case(data):
        md, notes = F.draw_metadata(F.HypothesisChooser(data), micro.metadata)
        note("; ".join(notes))
        outcomes[F.check_file(micro.write(F.with_metadata(micro.data, md)))] += 1

    case()
    _report(record_property, "metadata type/range mutations (micro model)", outcomes)
    assert sum(outcomes.values()) >= min(_scaled(request, 200), 100)


@pytest.mark.parametrize("fname", ["tiny-q4_k_m.gguf", "tinymoe-q4_k_m.gguf"])
def test_mutated_oracle_file(oracle_dir, tmp_path_factory, request, record_property, fname):
    """The same byte-level mutations on files llama.cpp's tools wrote (real tokenizer metadata,
    K-quants; dense and mixture of experts), fewer cases since each is several MB."""
    data = (oracle_dir / fname).read_bytes()
    lay = F.walk(data)
    path = tmp_path_factory.mktemp("fuzz-oracle") / "case.gguf"
    outcomes = Counter()

    @_fuzz_settings(max(_scaled(request, 300) // 10, 10))
    @given(st.data())
    def case(data_):
        muts = F.draw_mutations(F.HypothesisChooser(data_), lay)
        note("; ".join(map(str, muts)))
        path.write_bytes(F.apply_all(data, muts))
        outcomes[F.check_file(str(path))] += 1

    case()
    _report(record_property, f"header byte mutations (oracle {fname})", outcomes)


# ----------------------------------------------------------------------------
# crash isolation: batches of cases checked in a child process

def _write_batch(micro: Micro, d: Path, seed0: int, n: int) -> dict[str, str]:
    """n cases (alternately byte and metadata mutations) from seeds seed0.. ; name -> description."""
    d.mkdir(parents=True)
    what = {}
    for i in range(n):
        ch = F.RandomChooser(seed0 + i)
        if i % 2:
            md, notes = F.draw_metadata(ch, micro.metadata)
            data, desc = F.with_metadata(micro.data, md), "; ".join(notes)
        else:
            muts = F.draw_mutations(ch, micro.layout)
            data, desc = F.apply_all(micro.data, muts), "; ".join(map(str, muts))
        name = f"case{seed0 + i:07d}.gguf"
        (d / name).write_bytes(data)
        what[name] = desc
    return what


def _run_batch(d: Path, timeout: float, env=None):
    """Check every case of d in one child; (exit status or None on timeout, lines, stderr)."""
    try:
        r = subprocess.run([sys.executable, str(LIB), str(d)], capture_output=True, text=True,
                           timeout=timeout, env=env)
        return r.returncode, r.stdout.splitlines(), r.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, out.splitlines(), err


def _save(d: Path, name: str, desc: str, save_dir: Path) -> Path:
    save_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(d / name, save_dir / name)
    (save_dir / (name + ".txt")).write_text(desc + "\n")
    return save_dir / name


def _batch_problems(d: Path, what: dict, rc, lines, err, save_dir: Path) -> tuple[list[str], Counter]:
    """What went wrong in one batch (a crash, a hang, FAIL lines), each input saved; and the outcomes."""
    problems, outcomes, started, finished = [], Counter(), [], set()
    for line in lines:
        tag, _, rest = line.partition(" ")
        name, _, text = rest.partition(" ")
        if tag == "START":
            started.append(name)
        elif tag in ("DONE", "FAIL"):
            finished.add(name)
            outcomes[text if tag == "DONE" else "FAIL"] += 1
            if tag == "FAIL":
                saved = _save(d, name, what[name], save_dir)
                problems.append(f"{name} ({what[name]}): {text}; input saved as {saved}")
    if rc != 0 or "END" not in lines:
        culprit = started[-1] if started and started[-1] not in finished else None
        how = "hung (timeout)" if rc is None else (
            f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exited with status {rc}")
        if culprit:
            saved = _save(d, culprit, what[culprit], save_dir)
            problems.append(f"child {how} on {culprit} ({what[culprit]}); input saved as {saved}; "
                            f"stderr: {err[-1500:]}")
        else:
            problems.append(f"child {how} outside any case; stderr: {err[-1500:]}")
    return problems, outcomes


def _save_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("HARNESS_FUZZ_SAVE", tmp_path / "saved"))


def test_crash_isolated_batches(micro, tmp_path, request, record_property):
    """Mutated files checked in child processes, 100 per batch: a segfault, an abort or a hang
    in any layer (Python, numpy, the C engine) fails this test naming the case, whose input
    is saved (HARNESS_FUZZ_SAVE, else the test's tmp_path)."""
    total = _scaled(request, 200)
    outcomes, problems = Counter(), []
    for b, seed0 in enumerate(range(0, total, 100)):
        d = tmp_path / f"batch{b}"
        n = min(100, total - seed0)
        what = _write_batch(micro, d, 10_000 + seed0, n)
        rc, lines, err = _run_batch(d, timeout=60 + 2 * n)
        p, o = _batch_problems(d, what, rc, lines, err, _save_dir(tmp_path))
        problems += p
        outcomes += o
    _report(record_property, "crash-isolated batches (micro model, byte + metadata mutations)", outcomes)
    assert not problems, "\n".join(problems)
    assert sum(outcomes.values()) == total


def test_crash_isolation_names_and_saves_a_crashing_input(micro, tmp_path):
    """The isolation layer itself: a child that segfaults on one case is reported with that
    case's name and mutation, and the input is kept."""
    d = tmp_path / "batch"
    what = _write_batch(micro, d, 0, 4)
    victim = sorted(what)[2]
    env = dict(os.environ, HARNESS_FUZZ_CRASH_ON=victim)
    rc, lines, err = _run_batch(d, timeout=120, env=env)
    assert rc == -signal.SIGSEGV
    problems, outcomes = _batch_problems(d, what, rc, lines, err, tmp_path / "saved")
    assert len(problems) == 1 and f"killed by SIGSEGV on {victim}" in problems[0]
    assert sum(outcomes.values()) == 2                      # the two cases before it finished
    assert (tmp_path / "saved" / victim).read_bytes() == (d / victim).read_bytes()
    assert (tmp_path / "saved" / (victim + ".txt")).read_text().strip() == what[victim]
    assert "Fatal Python error: Segmentation fault" in err   # faulthandler's trace is kept


@pytest.mark.parametrize("block_count, says", [
    (511, "block_count says 511 trunk layers, but the file holds only"),
    (3, "missing tensor 'blk.2.attn_norm.weight' (block_count says 3 trunk layers)"),
])
def test_a_block_count_beyond_the_files_layers_is_refused_before_anything_is_sized_from_it(micro, block_count, says):
    """Found by the metadata fuzzer: block_count 511 with the layer-kind array removed made the loader
    build the tensor table of 511 layers (1.5 MB for a 34 KB file) before finding the first missing
    tensor. Now the count is checked against the file's tensors first."""
    from harness.errors import ModelFileError
    from harness.model.gguf_writer import Meta
    from harness.model.loader import load_model
    md = dict(micro.metadata)
    md["qwen35.block_count"] = Meta.u32(block_count)
    md.pop("qwen35.attention.recurrent_layers", None)
    path = micro.write(F.with_metadata(micro.data, md))
    with pytest.raises(ModelFileError, match=re.escape(says)):
        load_model(path)
    assert F.check_file(path).startswith("refused")
