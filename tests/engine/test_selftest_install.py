"""`harness selftest` from an installed package, not only from a source checkout: the build step
(setup.py's build_py) copies the C sources the self-test compiles into the package as
harness/_csrc/, and the driver uses the checkout's native/ when there is one, else that copy.

Fast: the build_py step alone, run on a copy of the project (no C extension is compiled), and the
driver's choice of source folder. Slow (--runslow): a real wheel, its file list, and the wheel
installed into a fresh environment running `harness selftest --isa scalar` outside the checkout."""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness.engine import selftest
from support.paths import NATIVE, ROOT

CSRC = "harness/_csrc"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.o", "build", "*.egg-info", "_native.c")


def needed_sources() -> set[str]:
    """What the self-test compiles, relative to native/: every file under include/ and src/,
    tests/selftest.c and whatever it includes from tests/."""
    out = {str(p.relative_to(NATIVE)) for d in ("include", "src") for p in (NATIVE / d).rglob("*")
           if p.is_file() and "__pycache__" not in p.parts}
    out.add("tests/selftest.c")
    for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"', (NATIVE / "tests" / "selftest.c").read_text(), re.M):
        if (NATIVE / "tests" / name).is_file():
            out.add(f"tests/{name}")
        else:   # everything else it includes comes from include/ or src/ (its -I folders)
            assert (NATIVE / "include" / name).is_file() or (NATIVE / "src" / name).is_file(), name
    return out


def project_copy(dst: Path) -> Path:
    """The files a build reads (what an sdist holds), copied, so nothing is written into the checkout."""
    dst.mkdir(parents=True)
    for f in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in"):
        if (ROOT / f).is_file():
            shutil.copy2(ROOT / f, dst / f)
    shutil.copytree(ROOT / "harness", dst / "harness", ignore=IGNORE)
    shutil.copytree(NATIVE, dst / "native", ignore=IGNORE)
    return dst


def test_build_py_copies_the_selftest_sources_into_the_package(tmp_path):
    src = project_copy(tmp_path / "src")
    lib = tmp_path / "lib"
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)], cwd=src,
                       capture_output=True, text=True, check=False, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    csrc = lib / CSRC
    shipped = {str(p.relative_to(csrc)) for p in csrc.rglob("*") if p.is_file()} if csrc.is_dir() else set()
    missing = needed_sources() - shipped
    assert not missing, f"not copied into {CSRC}: {sorted(missing)}"
    for rel in needed_sources():
        assert (csrc / rel).read_bytes() == (NATIVE / rel).read_bytes(), rel
    assert not any(p.is_symlink() for p in csrc.rglob("*"))
    assert not [p for p in shipped if p.endswith((".o", ".so", ".pyc"))]


def test_the_driver_uses_the_checkout_first_then_the_installed_copy(tmp_path, monkeypatch):
    assert selftest.native_dir() == NATIVE                 # a checkout (and the editable install) uses native/
    installed = tmp_path / "site" / "harness" / "_csrc"
    for rel in needed_sources():
        (installed / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(NATIVE / rel, installed / rel)
    monkeypatch.setattr(selftest, "CHECKOUT_NATIVE", tmp_path / "site" / "native")     # as after `pip install .`
    monkeypatch.setattr(selftest, "INSTALLED_NATIVE", installed)
    assert selftest.native_dir() == installed
    assert all(installed in p.parents for p in selftest._sources())
    monkeypatch.setattr(selftest, "INSTALLED_NATIVE", tmp_path / "nothing")
    with pytest.raises(selftest.SelftestError) as e:
        selftest.native_dir()
    assert str(tmp_path / "site" / "native") in str(e.value) and str(tmp_path / "nothing") in str(e.value)


# ---- the wheel -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wheel_file(tmp_path_factory) -> Path:
    """A wheel of the project, built from a copy of it (the C extension is compiled: about a minute)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = project_copy(tmp / "src")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src)]
    try:
        import wheel  # noqa: F401  (setuptools < 70 builds wheels with it)
        cmd.insert(5, "--no-build-isolation")      # the setuptools, wheel and cffi of this environment
    except ImportError:
        pass                                        # pip fetches the build requirements itself
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = (tmp / "dist").glob("qwen35_harness-*.whl")
    return whl


@pytest.mark.slow
def test_the_wheel_holds_the_selftest_sources(wheel_file):
    names = set(zipfile.ZipFile(wheel_file).namelist())
    missing = {f"{CSRC}/{rel}" for rel in needed_sources()} - names
    assert not missing, f"{wheel_file.name} lacks {sorted(missing)}"
    assert "harness/engine/selftest.py" in names and any(n.startswith("harness/_native") for n in names)


@pytest.mark.slow
def test_selftest_runs_from_an_installed_wheel_outside_the_checkout(wheel_file, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc: the self-test is compiled with it")
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # this environment's packages (numpy, cffi, gguf, pip ...) behind the fresh one's own: no download
    # (a plain path line: the editable install's .pth files of this environment are not read)
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "_deps_from_test_env.pth").write_text("\n".join(sorted(here)) + "\n")
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel_file)],
                       capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HARNESS_ISA")}
    env["HARNESS_CACHE"] = str(tmp_path / "cache")
    r = subprocess.run([str(env_dir / "bin" / "harness"), "selftest", "--isa", "scalar"], cwd=outside, env=env,
                       capture_output=True, text=True, check=False, timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert f"C sources: {Path(site).resolve() / 'harness' / '_csrc'}" in out, out       # the installed copy, not this checkout
    assert re.search(r"scalar +passed: \d+ checks passed, 0 failed", out), out


def test_the_sdist_holds_what_the_wheel_is_built_from(tmp_path):
    """MANIFEST.in: an sdist carries native/ (the extension's and the self-test's sources), so a wheel
    built from it (pip's or `python -m build`'s way) has them too."""
    src = project_copy(tmp_path / "src")
    r = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")], cwd=src,
                       capture_output=True, text=True, check=False, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    (sdist,) = (tmp_path / "dist").glob("qwen35-harness-*.tar.gz")
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    missing = {f"native/{rel}" for rel in needed_sources() | {"Makefile", "ffi_build.py"}} - names
    assert not missing, f"{sdist.name} lacks {sorted(missing)}"
    assert not [n for n in names if n.startswith("native/build/") or n.endswith((".o", ".so"))]
