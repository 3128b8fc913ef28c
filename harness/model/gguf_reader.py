"""A bounded, memory-mapped GGUF reader.

Why our own and not gguf.GGUFReader: that reader reports a truncated file or an
unknown tensor type as a bare numpy error ("cannot reshape array ...") that names
no tensor, and trusts counts and sizes from the file. Here every count, length,
shape and offset is checked against the file before it is used, and every
problem is a ModelFileError naming the key or tensor. Tensor data is never
copied: each tensor is a view into one read-only memory map. The gguf package
stays the independent oracle in the tests.

Layout (docs/qwen35.md §1.1): magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, the
key/value pairs, the tensor-info records, padding to general.alignment, data.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import ModelFileError
from harness.ggml_types import ACTIVATION_TYPES, BLOCK_GEOMETRY, GGMLType, type_name

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4
MAX_NAME = 63          # tensor names: llama.cpp's GGML_MAX_NAME is 64 with the terminating zero

# GGUF metadata value types: id -> (name, struct format or None)
_SCALAR = {
    0: ("u8", "<B"), 1: ("i8", "<b"), 2: ("u16", "<H"), 3: ("i16", "<h"),
    4: ("u32", "<I"), 5: ("i32", "<i"), 6: ("f32", "<f"), 7: ("bool", "<?"),
    10: ("u64", "<Q"), 11: ("i64", "<q"), 12: ("f64", "<d"),
}
_NUMPY = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4",
          7: "<u1", 10: "<u8", 11: "<i8", 12: "<f8"}
T_STRING, T_ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type: GGMLType
    ne: tuple[int, ...]        # ggml order: ne[0] is contiguous
    offset: int                # absolute file offset of the data
    nbytes: int

    @property
    def shape(self) -> tuple[int, ...]:
        """numpy (row-major) shape: ne reversed."""
        return tuple(reversed(self.ne))

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.ne:
            n *= d
        return n


@dataclass
class GGUFFile:
    path: str
    version: int
    metadata: dict[str, Any]
    tensors: dict[str, TensorInfo]
    alignment: int
    data_start: int
    file_size: int
    _mmap: mmap.mmap | None = field(default=None, repr=False)
    _buf: np.ndarray | None = field(default=None, repr=False)

    def tensor_data(self, name: str) -> np.ndarray:
        """Raw bytes of a tensor as a read-only uint8 view into the memory map."""
        if self._buf is None:
            raise ModelFileError(f"{self.path}: file is closed")
        t = self.tensors[name]
        return self._buf[t.offset:t.offset + t.nbytes]

    def release_pages(self, name: str) -> None:
        """Drop this process's pages of a tensor's bytes (the whole pages inside them) from its resident
        set, as after a copy of the tensor has replaced it (repacked weights): the map is a read-only
        view of the file, so a later read faults them back in from the page cache, unchanged."""
        if self._mmap is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        t = self.tensors[name]
        start = -(-t.offset // mmap.PAGESIZE) * mmap.PAGESIZE
        end = (t.offset + t.nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
        if end > start:
            self._mmap.madvise(mmap.MADV_DONTNEED, start, end - start)

    def close(self) -> None:
        self._buf = None
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:
                # numpy views into the map are still alive; the map closes when they go
                pass
            self._mmap = None


_U64 = struct.Struct("<Q")


class _Cursor:
    """Reads little-endian fields from a buffer, refusing to read past its end."""

    def __init__(self, buf, path: str):
        self.buf, self.pos, self.path = buf, 0, path
        self.size = len(buf)

    def fail(self, what: str) -> ModelFileError:
        return ModelFileError(f"{self.path}: {what}")

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise self.fail(f"truncated file: {what} needs {n} bytes at offset {self.pos}, "
                            f"file has {self.size}")

    def unpack(self, fmt: str, what: str):
        n = struct.calcsize(fmt)
        self.need(n, what)
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += n
        return v

    def string(self, what: str, max_len: int | None = None) -> str:
        n = self.unpack("<Q", f"length of {what}")
        if max_len is not None and n > max_len:
            raise self.fail(f"{what} is {n} bytes long (at most {max_len})")
        self.need(n, what)
        raw = self.buf[self.pos:self.pos + n]     # decoded from the map: no bytes copy first
        self.pos += n
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8") from None

    def strings(self, count: int, key: str) -> list[str]:
        """A string array: one tight pass (a tokenizer's 248K tokens and merges take ~0.2 s)."""
        buf, pos, size = self.buf, self.pos, self.size
        length_at = _U64.unpack_from
        out = []
        append = out.append
        try:
            for _ in range(count):
                (n,) = length_at(buf, pos)
                pos += 8
                if pos + n > size:
                    break
                append(str(buf[pos:pos + n], "utf-8"))
                pos += n
        except struct.error:
            pos = size + 1
        except UnicodeDecodeError:
            self.pos = pos
            raise self.fail(f"item {len(out)} of array {key!r} is not valid UTF-8") from None
        if len(out) < count:
            self.pos = min(pos, size)
            raise self.fail(f"truncated file: item {len(out)} of array {key!r} runs past the end "
                            f"({size} bytes)")
        self.pos = pos
        return out

    def value(self, vtype: int, key: str):
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype][1], f"value of {key!r}")
        if vtype == T_STRING:
            return self.string(f"string value of {key!r}")
        if vtype == T_ARRAY:
            etype = self.unpack("<I", f"array type of {key!r}")
            count = self.unpack("<Q", f"array length of {key!r}")
            if etype in _NUMPY:
                itemsize = np.dtype(_NUMPY[etype]).itemsize
                self.need(count * itemsize, f"array {key!r} of {count} items")
                arr = np.frombuffer(self.buf, dtype=_NUMPY[etype], count=count, offset=self.pos)
                self.pos += count * itemsize
                return arr.astype(bool) if etype == 7 else arr.copy()
            if etype == T_STRING:
                # every element takes at least 8 bytes (its length)
                self.need(count * 8, f"array {key!r} of {count} items")
                return self.strings(count, key)
            if etype == T_ARRAY:
                # as in llama.cpp's reader; nested arrays would also cost far more memory than file
                raise self.fail(f"metadata {key!r}: arrays of arrays are not supported")
            raise self.fail(f"metadata {key!r}: unknown array element type {etype}")
        raise self.fail(f"metadata {key!r}: unknown value type {vtype}")


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    """Parse and bounds-check a GGUF file; tensor data stays memory-mapped."""
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ModelFileError(f"{path}: cannot open: {e.strerror}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < 24:
            raise ModelFileError(f"{path}: not a GGUF file (only {size} bytes)")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return _parse(mm, path, size)
    except BaseException:
        try:
            mm.close()
        except BufferError:  # a view made while parsing is still referenced; gc closes it
            pass
        raise


def _parse(mm: mmap.mmap, path: str, size: int) -> GGUFFile:
    c = _Cursor(memoryview(mm), path)
    if bytes(c.buf[:4]) != GGUF_MAGIC:
        raise ModelFileError(f"{path}: not a GGUF file (magic {bytes(c.buf[:4])!r}, expected b'GGUF')")
    c.pos = 4
    version = c.unpack("<I", "version")
    if version not in (2, 3):
        raise ModelFileError(f"{path}: unsupported GGUF version {version} (need 2 or 3)")
    n_tensors = c.unpack("<Q", "tensor count")
    n_kv = c.unpack("<Q", "metadata count")
    # each kv takes >= 8+4 bytes and each tensor info >= 8+4+8+4+8 bytes
    if n_kv * 12 > size or n_tensors * 32 > size:
        raise c.fail(f"truncated or corrupt header: {n_kv} metadata entries and {n_tensors} "
                     f"tensors cannot fit in {size} bytes")

    metadata: dict[str, Any] = {}
    for i in range(n_kv):
        key = c.string(f"metadata key #{i}")
        vtype = c.unpack("<I", f"type of {key!r}")
        if key in metadata:
            raise c.fail(f"duplicate metadata key {key!r}")
        metadata[key] = c.value(vtype, key)

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1) or alignment > 1 << 20:
        raise c.fail(f"metadata 'general.alignment' = {alignment!r} is not a power of two")

    raw_infos = []
    for i in range(n_tensors):
        name = c.string(f"name of tensor #{i}", MAX_NAME)
        n_dims = c.unpack("<I", f"dimension count of tensor {name!r}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise c.fail(f"tensor {name!r}: {n_dims} dimensions (must be 1..{MAX_DIMS})")
        ne = tuple(c.unpack("<Q", f"dimensions of tensor {name!r}") for _ in range(n_dims))
        type_id = c.unpack("<I", f"type of tensor {name!r}")
        offset = c.unpack("<Q", f"offset of tensor {name!r}")
        raw_infos.append((name, ne, type_id, offset))

    data_start = -(-c.pos // alignment) * alignment
    if data_start > size:
        raise c.fail(f"truncated file: tensor data would start at {data_start}, file has {size} bytes")

    tensors: dict[str, TensorInfo] = {}
    for name, ne, type_id, offset in raw_infos:
        if name in tensors:
            raise c.fail(f"duplicate tensor {name!r}")
        try:
            t = GGMLType(type_id)
        except ValueError:
            raise c.fail(f"tensor {name!r} has type {_ggml_name(type_id)}, which is not supported "
                         f"(supported: {', '.join(x.name for x in _supported())})") from None
        if t not in _supported():
            raise c.fail(f"tensor {name!r} has type {t.name}, which is not a weight type")
        if any(d == 0 for d in ne) or any(d >= 1 << 40 for d in ne):
            raise c.fail(f"tensor {name!r}: invalid dimensions {list(ne)}")
        n = 1
        for d in ne:
            n *= d
        elems, bsize = BLOCK_GEOMETRY[t]
        if ne[0] % elems:
            raise c.fail(f"tensor {name!r}: ne[0]={ne[0]} is not a multiple of the {t.name} block size {elems}")
        nbytes = n // elems * bsize
        if offset % alignment:
            raise c.fail(f"tensor {name!r}: data offset {offset} is not aligned to {alignment}")
        start = data_start + offset
        if start + nbytes > size:
            raise c.fail(f"truncated file: tensor {name!r} needs bytes [{start}, {start + nbytes}), "
                         f"file has {size}")
        tensors[name] = TensorInfo(name, t, ne, start, nbytes)

    spans = sorted((t.offset, t.offset + t.nbytes, t.name) for t in tensors.values())
    for (_, e0, n0), (s1, _, n1) in zip(spans, spans[1:]):
        if s1 < e0:
            raise c.fail(f"tensors {n0!r} and {n1!r} overlap in the file")

    buf = np.frombuffer(mm, dtype=np.uint8)
    buf.flags.writeable = False
    return GGUFFile(path, version, metadata, tensors, alignment, data_start, size, mm, buf)


def _supported() -> list[GGMLType]:
    return [t for t in GGMLType if t not in ACTIVATION_TYPES]


def _ggml_name(type_id: int) -> str:
    try:
        import gguf
        return gguf.GGMLQuantizationType(type_id).name
    except Exception:
        return type_name(type_id)
