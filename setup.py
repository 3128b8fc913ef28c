# The C engine is built by cffi (API / out-of-line mode) at install time.
# setuptools reads everything else from pyproject.toml.
#
# `harness selftest` compiles native/ with the system C compiler, so the package carries the C
# sources it needs: build_py copies them into the built package as harness/_csrc/ (laid out as
# native/ is). A source checkout and an editable install use native/ itself.
import re
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

NATIVE = Path(__file__).resolve().parent / "native"
CSRC = ("harness", "_csrc")
JUNK = (".o", ".so", ".a", ".pyc")


def selftest_sources(native: Path = NATIVE) -> list[str]:
    """What the self-test compiles, relative to native/: everything under include/ and src/,
    tests/selftest.c and what it includes from tests/, and the Makefile."""
    files = [p for d in ("include", "src") for p in (native / d).rglob("*")
             if p.is_file() and not p.name.endswith(JUNK) and "__pycache__" not in p.parts]
    main = native / "tests" / "selftest.c"
    files += [main, native / "Makefile"]
    for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"', main.read_text(), re.MULTILINE):
        if (native / "tests" / name).is_file():
            files.append(native / "tests" / name)
    return sorted({str(p.relative_to(native)) for p in files if p.is_file()})


class build_py_with_csrc(build_py):
    """build_py, plus the self-test's C sources copied (not linked) into harness/_csrc/."""

    def run(self):
        super().run()
        dest = Path(self.build_lib, *CSRC)
        if dest.exists():
            shutil.rmtree(dest)           # nothing stale from an earlier build
        for rel in selftest_sources():
            target = dest / rel
            self.mkpath(str(target.parent))
            self.copy_file(str(NATIVE / rel), str(target), preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        dest = Path(self.build_lib, *CSRC)
        return [*super().get_outputs(include_bytecode), *(str(dest / rel) for rel in selftest_sources())]


setup(cffi_modules=["native/ffi_build.py:ffibuilder"], cmdclass={"build_py": build_py_with_csrc})
