"""Small programs built against llama.cpp's own libraries (the llama-cpp-python 0.3.36 sdist, built with
BUILD_SHARED_LIBS=OFF as the README says): ggml_bitwise.c compares our kernels with
ggml-cpu's bit for bit, llama_logits.cpp gives llama.cpp's logits on a file. Tests that need them skip when
the build is not there (HARNESS_LLAMA_CPP_BIN names its bin folder, HARNESS_LLAMA_CPP_SRC the source)."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from support.paths import LLAMA_CPP_BIN, NATIVE

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class LlamaBuild:
    src: Path     # the llama.cpp source tree (include/, ggml/include/)
    build: Path   # its CMake build folder (src/libllama.a, ggml/src/libggml*.a)

    @property
    def ggml_libs(self) -> list[str]:
        return [str(self.build / "ggml" / "src" / f"libggml{s}.a") for s in ("", "-cpu", "-base")]


def find_build() -> LlamaBuild | None:
    """llama.cpp's static libraries and headers, or None."""
    build = LLAMA_CPP_BIN.parent
    src = Path(os.environ.get("HARNESS_LLAMA_CPP_SRC", build.parent))
    need = [build / "src" / "libllama.a", src / "include" / "llama.h", src / "ggml" / "include" / "ggml-cpu.h"]
    b = LlamaBuild(src, build)
    return b if all(p.is_file() for p in need + [Path(x) for x in b.ggml_libs]) else None


def _compile(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed:\n{r.stderr[-3000:]}")


def build_ggml_bitwise(b: LlamaBuild, out: Path) -> Path:
    """ggml_bitwise: our native sources (the extension's flags) linked with ggml-cpu."""
    exe = out / "ggml_bitwise"
    _compile(["gcc", "-O2", "-std=gnu11", "-fno-math-errno", f"-I{NATIVE / 'include'}", f"-I{NATIVE / 'src'}",
              f"-I{b.src / 'ggml' / 'include'}", "-o", str(exe), *map(str, sorted((NATIVE / "src").rglob("*.c"))),
              str(HERE / "ggml_bitwise.c"), *b.ggml_libs, "-lstdc++", "-lm", "-pthread", "-fopenmp"])
    return exe


def build_llama_logits(b: LlamaBuild, out: Path) -> Path:
    exe = out / "llama_logits"
    _compile(["g++", "-O2", "-std=c++17", f"-I{b.src / 'include'}", f"-I{b.src / 'ggml' / 'include'}", "-o", str(exe),
              str(HERE / "llama_logits.cpp"), str(b.build / "src" / "libllama.a"), *b.ggml_libs,
              "-fopenmp", "-lpthread", "-ldl"])
    return exe
