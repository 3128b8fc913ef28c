"""Structure-aware mutations of GGUF files, and the check every mutated file must pass.

Used in process by tests/test_fuzz_gguf.py (hypothesis draws the mutations and shrinks
failures) and, for crash isolation, as a script that checks a directory of case files in
one child process and reports one line per case:

    python tests/gguf_fuzz_lib.py CASE_DIR        # lines: START name / DONE name outcome / FAIL name why

The layout walker below is written independently of harness.model.gguf_reader on purpose: it is
the test's own map of where each header field lies, so mutations can aim at counts,
lengths, types, dims and offsets instead of only flipping random bytes.
"""
from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import struct
import sys
import tracemalloc
from dataclasses import dataclass

import numpy as np

CASE_SECONDS = 10          # hard bound on one case (load + info + a 3-token forward pass)
ALLOC_SLACK = 1 << 20      # traced Python allocations may exceed the file size by at most this

# value type id -> struct format of the GGUF scalar types
_SCALAR_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B",
               10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


# ----------------------------------------------------------------------------
# the micro model: every layer kind and several weight types in about 25 KB

def micro_shape():
    from harness.model.presets import Shape
    return Shape("micro", n_layer=2, n_embd=32, n_ff=64, n_head=2, n_head_kv=1, ssm_k_heads=1,
                 ssm_v_heads=2, tied=False, head_dim=16, rope_dims=8, ssm_state=16, vocab_size=64,
                 full_attention_interval=2, rope_sections=(2, 1, 1, 0), context_length=256)


def micro_parts():
    """The micro model's metadata {key: (type id, value)} and tensor plan."""
    from harness.ggml_types import GGMLType
    from harness.model.gguf_writer import Meta, PlannedTensor
    from harness.model.synth import quant_plan, synth_metadata

    s = micro_shape()
    md = synth_metadata(s, "q8_0", 0)
    md["general.alignment"] = Meta.u32(32)
    md["tokenizer.ggml.tokens"] = (_ARRAY, (_STRING, [f"t{i}" for i in range(s.vocab_size)]))
    md["general.ctx_hint"] = (10, 1 << 33)          # a u64 scalar
    retype = {"ffn_up.weight": GGMLType.F16, "ffn_gate.weight": GGMLType.Q4_0,
              "attn_gate.weight": GGMLType.BF16, "output.weight": GGMLType.F32}
    plan = [PlannedTensor(t.name, t.shape, retype.get(t.name.split(".", 2)[-1], t.type))
            for t in quant_plan(s, "q8_0")]
    return md, plan


def write_micro_model(path) -> str:
    """A valid two-layer Qwen3.5 GGUF (one Gated DeltaNet, one attention layer) with
    F32, F16, BF16, Q8_0 and Q4_0 tensors, a tokenizer token list and an explicit
    general.alignment, so the fuzzer has every kind of field to aim at. Written by the
    project's own writer."""
    from harness.model.gguf_writer import GGUFStreamWriter
    from harness.model.synth import write_weights

    md, plan = micro_parts()
    with GGUFStreamWriter(path, md, plan) as w:
        write_weights(w, micro_shape(), seed=0, threads=1)
    return os.fspath(path)


# ----------------------------------------------------------------------------
# metadata of the wrong type or range, re-serialized around the base file's tensor data

def encode_value(vtype: int, v) -> bytes:
    """GGUF bytes of a typed value; arrays are (element type, items) and may nest."""
    if vtype in _SCALAR_FMT:
        return struct.pack(_SCALAR_FMT[vtype], v)
    if vtype == _STRING:
        b = v.encode("utf-8")
        return struct.pack("<Q", len(b)) + b
    etype, items = v
    return struct.pack("<IQ", etype, len(items)) + b"".join(encode_value(etype, x) for x in items)


def with_metadata(base: bytes, md: dict) -> bytes:
    """The base file with its metadata replaced by `md` (tensor infos and data unchanged)."""
    lay = walk(base)
    first_tensor = next(f.pos for f in lay.fields if f.where == "tensor name length")
    infos = base[first_tensor:lay.header_end]
    n_tensors = int.from_bytes(base[8:16], "little")
    head = [b"GGUF", struct.pack("<IQQ", 3, n_tensors, len(md))]
    for k, (vtype, v) in md.items():
        head += [encode_value(_STRING, k), struct.pack("<I", vtype), encode_value(vtype, v)]
    head = b"".join(head) + infos
    align = md.get("general.alignment", (4, 32))[1]
    align = align if isinstance(align, int) and 0 < align <= 1 << 16 and not align & (align - 1) else 32
    return head + bytes(-len(head) % align) + base[lay.data_start:]


_INTS = {0: (0, 255), 1: (-128, 127), 2: (0, 65535), 3: (-32768, 32767), 4: (0, (1 << 32) - 1),
         5: (-(1 << 31), (1 << 31) - 1), 10: (0, (1 << 64) - 1), 11: (-(1 << 63), (1 << 63) - 1), 7: (0, 1)}
_INT_PICKS = (0, 1, 2, 3, 4, 8, 16, 17, 32, 64, 255, 256, 511, 513, 4096, 1 << 31, (1 << 31) - 1, 1 << 32,
              (1 << 32) - 1, 1 << 40, 1 << 62, -1, -2, -(1 << 31))
_FLOAT_PICKS = (float("nan"), float("inf"), float("-inf"), 0.0, -0.0, 1e-45, 1e-30, 1e-6, 0.5, 1.0, 1e7,
                3e38, -1.0, -1e7)
_STRING_PICKS = ("", "qwen35", "qwen35moe", "llama", "t0", "\u00e9\u4e2d\U0001f600", "x" * 300)


def draw_value(ch, depth: int = 0):
    """A (type id, value) of any GGUF type, drawn among edge values."""
    vtype = ch.pick(tuple(_SCALAR_FMT) + (_STRING, _ARRAY))
    if vtype in _INTS:
        lo, hi = _INTS[vtype]
        picks = [v for v in _INT_PICKS if lo <= v <= hi] + [lo, hi]
        return vtype, ch.pick(picks)
    if vtype in (6, 12):
        return vtype, ch.pick(_FLOAT_PICKS)
    if vtype == _STRING:
        return vtype, ch.pick(_STRING_PICKS)
    etype, item = draw_value(ch, depth + 1) if depth < 2 else (4, 1)
    n = ch.pick((0, 1, 2, 3, 4, 8, 9))
    items = [item] + [draw_value_of(ch, etype, depth + 1) for _ in range(n - 1)] if n else []
    return _ARRAY, (etype, items)


def draw_value_of(ch, vtype: int, depth: int):
    while True:
        t, v = draw_value(ch, depth)
        if t == vtype:
            return v
        if vtype in _INTS:
            return ch.pick([x for x in _INT_PICKS if _INTS[vtype][0] <= x <= _INTS[vtype][1]])
        if vtype in (6, 12):
            return ch.pick(_FLOAT_PICKS)
        if vtype == _STRING:
            return ch.pick(_STRING_PICKS)


def draw_metadata(ch, md: dict, max_ops: int = 3) -> tuple[dict, list[str]]:
    """Change 1..max_ops metadata entries: another type, an edge number, removed, or added."""
    md = dict(md)
    notes = []
    for i in range(ch.int(1, max_ops)):
        keys = sorted(md)
        op = ch.pick(("retype", "retype", "number", "number", "delete", "add"))
        key = ch.pick(keys) if op != "add" else f"fuzz.key{i}"
        if op == "delete":
            md.pop(key)
            notes.append(f"delete {key!r}")
            continue
        if op == "number":
            vtype = md[key][0] if md[key][0] in _INTS else ch.pick((4, 5, 10, 11))
            lo, hi = _INTS[vtype]
            md[key] = (vtype, ch.pick([v for v in _INT_PICKS if lo <= v <= hi]))
        else:
            md[key] = draw_value(ch)
        notes.append(f"{op} {key!r} = {md[key]!r}"[:200])
    return md, notes


# ----------------------------------------------------------------------------
# where each header field lies

@dataclass(frozen=True)
class Field:
    where: str        # human name: "n_kv", "kv 'qwen35.block_count' value", "tensor 'x' dim 1", ...
    kind: str         # version | count | length | type | value | ndims | dim | offset
    pos: int
    size: int         # bytes: 1, 2, 4 or 8

    def read(self, data) -> int:
        return int.from_bytes(data[self.pos:self.pos + self.size], "little")


@dataclass(frozen=True)
class Layout:
    data: bytes
    fields: tuple[Field, ...]
    header_end: int   # end of the tensor-info records
    data_start: int


def walk(data: bytes) -> Layout:
    """Map the fields of a valid GGUF (v3, little-endian)."""
    fields: list[Field] = []
    pos = 4

    def take(where, kind, size):
        nonlocal pos
        f = Field(where, kind, pos, size)
        fields.append(f)
        pos += size
        return f.read(data)

    def string(where):
        nonlocal pos
        n = take(f"{where} length", "length", 8)
        s = data[pos:pos + n].decode()
        pos += n
        return s

    take("version", "version", 4)
    n_tensors = take("n_tensors", "count", 8)
    n_kv = take("n_kv", "count", 8)
    alignment = 32
    for _ in range(n_kv):
        key = string("kv key")
        vtype = take(f"kv {key!r} type", "type", 4)
        if vtype in _SCALAR_FMT:
            size = struct.calcsize(_SCALAR_FMT[vtype])
            v = take(f"kv {key!r} value", "value", size)
            if key == "general.alignment":
                alignment = v
        elif vtype == _STRING:
            string(f"kv {key!r} string")
        else:
            etype = take(f"kv {key!r} array type", "type", 4)
            count = take(f"kv {key!r} array count", "count", 8)
            for i in range(count):
                if etype == _STRING:
                    # aim at the first, second and last element lengths only
                    if i < 2 or i == count - 1:
                        string(f"kv {key!r} item {i}")
                    else:
                        pos += 8 + int.from_bytes(data[pos:pos + 8], "little")
                else:
                    size = struct.calcsize(_SCALAR_FMT[etype])
                    if i < 2:
                        take(f"kv {key!r} item {i}", "value", size)
                    else:
                        pos += size
    for _ in range(n_tensors):
        name = string("tensor name")
        n_dims = take(f"tensor {name!r} n_dims", "ndims", 4)
        for d in range(n_dims):
            take(f"tensor {name!r} dim {d}", "dim", 8)
        take(f"tensor {name!r} type", "type", 4)
        take(f"tensor {name!r} offset", "offset", 8)
    return Layout(bytes(data), tuple(fields), pos, -(-pos // alignment) * alignment)


# ----------------------------------------------------------------------------
# mutations

@dataclass(frozen=True)
class Mutation:
    op: str           # set | flip | truncate | insert | delete
    pos: int
    arg: int | bytes = 0
    size: int = 0     # "set": the field's width
    where: str = ""   # "set": the field's name

    def apply(self, d: bytearray) -> bytearray:
        if self.op == "set":
            if self.pos + self.size <= len(d):
                d[self.pos:self.pos + self.size] = self.arg.to_bytes(self.size, "little")
        elif self.op == "flip":
            if self.pos < len(d):
                d[self.pos] ^= self.arg
        elif self.op == "truncate":
            del d[self.arg:]
        elif self.op == "insert":
            d[self.pos:self.pos] = self.arg
        elif self.op == "delete":
            del d[self.pos:self.pos + self.arg]
        return d

    def __str__(self) -> str:
        if self.op == "set":
            return f"set {self.where} (byte {self.pos}) to {self.arg}"
        if self.op == "flip":
            return f"xor byte {self.pos} with {self.arg:#04x}"
        if self.op == "truncate":
            return f"truncate to {self.arg} bytes"
        if self.op == "insert":
            return f"insert {len(self.arg)} bytes at {self.pos}"
        return f"delete {self.arg} bytes at {self.pos}"


def apply_all(base: bytes, muts) -> bytes:
    d = bytearray(base)
    for m in muts:
        d = m.apply(d)
    return bytes(d)


class RandomChooser:
    """Draws from a seeded random.Random (the crash-isolated batches)."""

    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.r.randint(lo, hi)

    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]


class HypothesisChooser:
    """Draws from hypothesis' st.data(), so failures shrink."""

    def __init__(self, data):
        from hypothesis import strategies as st
        self.data, self.st = data, st

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))

    def pick(self, seq):
        return self.data.draw(self.st.sampled_from(seq))


def _interesting(f: Field, orig: int, lay: Layout) -> list[int]:
    top = (1 << (8 * f.size)) - 1
    size = len(lay.data)
    vals = {0, 1, 2, 3, top, top - 1, top >> 1, (top >> 1) + 1, orig + 1, orig - 1, orig * 2, orig // 2,
            1 << 31, 1 << 32, 1 << 40, (1 << 40) - 1, 1 << 62, size, size - 1, size // 2,
            orig + (1 << 32), orig + 32, orig - 32, 7, 9, 10, 15, 23, 30, 31, 33, 64, 255, 256, 4097}
    if f.kind == "offset":
        # another tensor's data offset: overlapping tensors
        vals |= {x.read(lay.data) for x in lay.fields if x.kind == "offset"}
    return sorted(v for v in vals if 0 <= v <= top)


def draw_mutations(ch, lay: Layout, max_ops: int = 3) -> list[Mutation]:
    """1..max_ops mutations, each aimed at a header field, a byte of the header region,
    the file's length, or the header's byte positions."""
    size = len(lay.data)
    out = []
    for _ in range(ch.int(1, max_ops)):
        op = ch.pick(("set", "set", "set", "flip", "truncate", "insert", "delete"))
        if op == "set":
            f = lay.fields[ch.int(0, len(lay.fields) - 1)]
            cand = _interesting(f, f.read(lay.data), lay)
            v = cand[ch.int(0, len(cand) - 1)] if ch.int(0, 3) else ch.int(0, (1 << (8 * f.size)) - 1)
            out.append(Mutation("set", f.pos, v, f.size, f.where))
        elif op == "flip":
            if ch.int(0, 1):     # a byte of some field (hypothesis favours small numbers: aim it)
                f = lay.fields[ch.int(0, len(lay.fields) - 1)]
                pos = f.pos + ch.int(0, f.size - 1)
            else:                # any byte of the header region, strings included (the magic seldom)
                pos = ch.int(0 if ch.int(0, 7) == 0 else 4, lay.header_end - 1)
            out.append(Mutation("flip", pos, ch.int(1, 255)))
        elif op == "truncate":
            marks = sorted({f.pos for f in lay.fields} | {lay.header_end, lay.data_start, size - 1})
            n = ch.pick(marks) if ch.int(0, 1) else ch.int(0, size - 1)
            out.append(Mutation("truncate", 0, n))
        elif op == "insert":
            n = ch.int(1, 16)
            out.append(Mutation("insert", ch.int(0, lay.header_end), bytes(ch.int(0, 255) for _ in range(n))))
        else:
            out.append(Mutation("delete", ch.int(0, lay.header_end - 1), ch.int(1, 16)))
    return out


# ----------------------------------------------------------------------------
# the check

class FuzzFailure(AssertionError):
    """A mutated file broke a guarantee (wrong exception type, hang, allocation, bad view)."""


class _Timeout(BaseException):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block after `seconds` (main thread only; C code is interrupted only when it
    returns, which is why the batches also run in a child process with a timeout)."""
    def on_alarm(signum, frame):
        raise _Timeout()
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def error_kind(msg: str) -> str:
    """'PATH: tensor 'x' has 5 dims ...' -> "tensor _ has _ dims" (for the outcome summary)."""
    msg = msg.split(": ", 1)[-1]
    msg = re.sub(r"'[^']*'|\"[^\"]*\"|\[[^\]]*\]|b'.*'|-?\d+(\.\d+)?(e[-+]?\d+)?", "_", msg)
    return " ".join(msg.split()[:6])


def _check_views(m, size: int) -> None:
    """Every tensor the engine would get is a view inside the file, after the header, of
    exactly the bytes its type and shape need, and no two overlap."""
    from harness.ggml_types import BLOCK_GEOMETRY
    spans = []
    for spec in m.specs:
        t = m.info(spec.name)
        elems, bsize = BLOCK_GEOMETRY[t.type]
        n = int(np.prod(t.shape, dtype=object))
        view = m.raw(spec.name)
        ok = (t.shape == spec.shape and t.type in spec.types and n % elems == 0
              and t.nbytes == n // elems * bsize and view.size == t.nbytes
              and m.gguf.data_start <= t.offset and t.offset + t.nbytes <= size
              and np.shares_memory(view, m.gguf._buf))
        if not ok:
            raise FuzzFailure(f"tensor {spec.name!r}: view [{t.offset}, {t.offset + t.nbytes}) of {t.type.name} "
                              f"{t.shape} does not fit file of {size} bytes / its spec")
        spans.append((t.offset, t.offset + t.nbytes, spec.name))
    spans.sort()
    for a, b in zip(spans, spans[1:]):
        if b[0] < a[1]:
            raise FuzzFailure(f"tensors {a[2]!r} and {b[2]!r} overlap")


def _check_pointers(s, m) -> None:
    """Every buffer handed to C lies inside the memory map of the file."""
    from harness.native import ffi
    lo = int(ffi.cast("uintptr_t", ffi.from_buffer(m.gguf._buf)))
    hi = lo + m.gguf.file_size
    for buf in s._nm._buffers:
        a = int(ffi.cast("uintptr_t", buf))
        if not (lo + m.gguf.data_start <= a and a + len(buf) <= hi):
            raise FuzzFailure(f"a {len(buf)}-byte buffer at {a - lo} handed to C is outside the file's data "
                              f"[{m.gguf.data_start}, {m.gguf.file_size})")
    if len(s._nm._buffers) != len(m.specs):
        raise FuzzFailure(f"{len(s._nm._buffers)} buffers for {len(m.specs)} tensors")


def _weights_are_sane(m) -> bool:
    with np.errstate(all="ignore"):
        for spec in m.specs:
            w = m.dequantized(spec.name)
            if not np.isfinite(w).all() or np.abs(w).max() > 1e4:
                return False
    return True


def _run_engine(m) -> str:
    """A 3-token prefill and one decode step; 'engine refused: ...' for a config the engine
    declines with a HarnessError."""
    from harness.engine.session import Session
    from harness.errors import HarnessError
    V = m.config.vocab_size
    try:
        with Session(m, threads=1, ctx=8, ubatch=2) as s:
            _check_pointers(s, m)
            a = s.prefill([0, 1 % V, 2 % V])
            b = s.decode(3 % V)
    except HarnessError as e:
        return f"engine refused: {error_kind(str(e))}"
    if a.shape != (3, V) or b.shape != (V,):
        raise FuzzFailure(f"logits of shape {a.shape} / {b.shape} for vocabulary {V}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        if _weights_are_sane(m):
            raise FuzzFailure("non-finite logits from finite weights")
        return "loaded, ran (non-finite weights)"
    return "loaded, ran"


def check_file(path: str) -> str:
    """Load a possibly hostile file; return a short outcome, or raise FuzzFailure."""
    from harness.report.model_info import model_info

    size = os.path.getsize(path)
    model = None
    try:
        with time_limit(CASE_SECONDS):
            for _ in range(2):
                # a module imported on first use is not an allocation sized from the file:
                # measure a second load before calling it one
                if model is not None:
                    model.close()
                model, outcome, peak = _traced_load(path)
                if peak <= size + ALLOC_SLACK:
                    break
            else:
                raise FuzzFailure(f"loading allocated {peak} bytes for a file of {size}")
            if model is not None:
                _check_views(model, size)
                model_info(model, tensors=True)
                outcome = _run_engine(model)
    except _Timeout:
        raise FuzzFailure(f"no answer within {CASE_SECONDS} s") from None
    except FuzzFailure:
        raise
    except Exception as e:
        raise FuzzFailure(f"{type(e).__name__} instead of a HarnessError: {e}") from e
    finally:
        if model is not None:
            model.close()
    return outcome


def _traced_load(path: str):
    """(model or None, outcome, peak bytes of Python allocations while loading)."""
    from harness.errors import HarnessError
    from harness.model.loader import load_model

    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    model, outcome = None, "loaded"
    try:
        model = load_model(path)
    except HarnessError as e:
        outcome = f"refused: {error_kind(str(e))}"
    finally:
        peak = tracemalloc.get_traced_memory()[1] - base
        if not tracing:
            tracemalloc.stop()
    return model, outcome, peak


# ----------------------------------------------------------------------------
# the child-process side of the crash-isolated batches

def _limit_address_space(extra: int) -> None:
    """Cap this process's address space at what it uses now plus `extra` bytes, so an
    allocation sized from a hostile count fails instead of swapping the machine."""
    import resource
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + extra, vm + extra))


def main(case_dir: str) -> int:
    import faulthandler
    faulthandler.enable()
    import harness.engine.session  # noqa: F401  (load the extension before capping memory)
    import harness.report.model_info  # noqa: F401
    _limit_address_space(512 << 20)
    crash_on = os.environ.get("HARNESS_FUZZ_CRASH_ON")     # the isolation layer's own test
    for name in sorted(os.listdir(case_dir)):
        if not name.endswith(".gguf"):
            continue
        print(f"START {name}", flush=True)
        if name == crash_on:
            import ctypes
            ctypes.string_at(0)                              # a real segfault
        try:
            outcome = check_file(os.path.join(case_dir, name))
            print(f"DONE {name} {outcome}", flush=True)
        except FuzzFailure as e:
            print(f"FAIL {name} {e}".replace("\n", " "), flush=True)
    print("END", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
