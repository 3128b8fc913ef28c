"""cffi build script (API / out-of-line mode) for harness._native.

Every C file under native/src is compiled into one extension. ISA variants
live in their own files and select their instruction set with per-file
target pragmas, so the whole build uses portable baseline flags (never
-march=native) and the best variant is chosen at run time.
"""
from pathlib import Path

from cffi import FFI

NATIVE = Path(__file__).resolve().parent
ROOT = NATIVE.parent


def _rel(p: Path) -> str:
    # setuptools wants paths relative to the project root
    return str(p.relative_to(ROOT))


SOURCES = sorted(_rel(p) for p in (NATIVE / "src").rglob("*.c"))
HEADER = (NATIVE / "include" / "q35.h").read_text()


def _cdef_from_header(text: str) -> str:
    """The declarations of q35.h, minus what cffi's parser does not take."""
    keep = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#define Q35_") and len(s.split()) == 3:
            keep.append(line)  # integer constants cffi can read
            continue
        if s.startswith("#") or s.startswith('extern "C"') or s == "}":
            continue
        keep.append(line)
    return "\n".join(keep)


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header(HEADER))
ffibuilder.set_source(
    "harness._native",
    '#include "q35.h"',
    sources=SOURCES,
    include_dirs=[_rel(NATIVE / "include"), _rel(NATIVE / "src")],
    extra_compile_args=["-O2", "-std=gnu11", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
