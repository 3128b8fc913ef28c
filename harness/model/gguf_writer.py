"""A streaming GGUF v3 writer: the header (metadata and tensor infos) first, then each
tensor's bytes as they are produced, so multi-GB models never sit in memory whole."""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from harness.ggml_types import BLOCK_GEOMETRY, GGMLType

ALIGNMENT = 32
# GGUF value type ids
_U32, _I32, _F32, _BOOL, _STR, _ARR, _U64 = 4, 5, 6, 7, 8, 9, 10


class Meta:
    """Typed metadata values (GGUF stores the type with each value)."""

    @staticmethod
    def u32(v: int): return (_U32, int(v))

    @staticmethod
    def f32(v: float): return (_F32, float(v))

    @staticmethod
    def str(v: str): return (_STR, v)

    @staticmethod
    def i32_array(vs): return (_ARR, (_I32, [int(x) for x in vs]))

    @staticmethod
    def bool_array(vs): return (_ARR, (_BOOL, [bool(x) for x in vs]))

    @staticmethod
    def bool(v): return (_BOOL, bool(v))

    @staticmethod
    def str_array(vs): return (_ARR, (_STR, list(vs)))


@dataclass(frozen=True)
class PlannedTensor:
    name: str
    shape: tuple[int, ...]   # numpy order
    type: GGMLType

    @property
    def nbytes(self) -> int:
        elems, size = BLOCK_GEOMETRY[self.type]
        n = 1
        for d in self.shape:
            n *= d
        return n // elems * size


def _string(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(vtype: int, v) -> bytes:
    if vtype == _U32:
        return struct.pack("<I", v)
    if vtype == _I32:
        return struct.pack("<i", v)
    if vtype == _F32:
        return struct.pack("<f", v)
    if vtype == _BOOL:
        return struct.pack("<?", v)
    if vtype == _U64:
        return struct.pack("<Q", v)
    if vtype == _STR:
        return _string(v)
    if vtype == _ARR:
        etype, items = v
        if etype == _I32:
            body = np.asarray(items, dtype="<i4").tobytes()
        else:
            body = b"".join(_value(etype, x) for x in items)
        return struct.pack("<IQ", etype, len(items)) + body
    raise ValueError(f"unsupported GGUF value type {vtype}")


class GGUFStreamWriter:
    """with GGUFStreamWriter(path, metadata, tensors) as w: w.write(name, bytes) in order."""

    def __init__(self, path: str | os.PathLike, metadata: dict[str, tuple], tensors: list[PlannedTensor]):
        self.path = os.fspath(path)
        self.tmp = self.path + ".partial"
        self.tensors = tensors
        self._next = 0
        self._written = 0
        self.f = open(self.tmp, "wb")
        head = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(metadata))]
        for k, (vtype, v) in metadata.items():
            head += [_string(k), struct.pack("<I", vtype), _value(vtype, v)]
        offset = 0
        self.offsets = []
        for t in tensors:
            ne = list(reversed(t.shape))
            head += [_string(t.name), struct.pack("<I", len(ne)), struct.pack(f"<{len(ne)}Q", *ne),
                     struct.pack("<IQ", int(t.type), offset)]
            self.offsets.append(offset)
            offset += -(-t.nbytes // ALIGNMENT) * ALIGNMENT
        header = b"".join(head)
        self.f.write(header + b"\0" * (-len(header) % ALIGNMENT))

    def write(self, name: str, data: np.ndarray | bytes) -> None:
        """Append (part of) the data of the next tensor; call repeatedly to stream it."""
        t = self.tensors[self._next]
        if t.name != name:
            raise ValueError(f"expected data for {t.name!r}, got {name!r}")
        buf = memoryview(np.ascontiguousarray(data)).cast("B") if isinstance(data, np.ndarray) else data
        self.f.write(buf)
        self._written += len(buf)
        if self._written > t.nbytes:
            raise ValueError(f"tensor {name!r}: {self._written} bytes written, {t.nbytes} expected")
        if self._written == t.nbytes:
            self.f.write(b"\0" * (-t.nbytes % ALIGNMENT))
            self._next += 1
            self._written = 0

    def close(self) -> None:
        complete = self._next == len(self.tensors)
        self.f.close()
        if complete:
            os.replace(self.tmp, self.path)     # a finished file appears atomically
        else:
            os.unlink(self.tmp)
            raise ValueError(f"{self.path}: only {self._next} of {len(self.tensors)} tensors written")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is not None:
            self.f.close()
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
            return False
        self.close()
