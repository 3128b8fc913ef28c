"""The package's rooms and the one-way rule between them, read from the source with ast: every
import statement of every module (those inside functions too) is an edge; no edge may point up the
table below, and the graph of modules has no cycle. Also: tests import helpers from tests/support,
never another test module."""
import ast
from pathlib import Path

import pytest

from support.paths import ROOT

PACKAGE = ROOT / "harness"
FOUNDATION = {"errors", "ggml_types", "native", "_native", "cache", "atomic", "provenance", "version", "settings"}
# what each room may import (besides itself); the public facade harness/__init__ re-exports the rooms
# below the measurements
MAY_IMPORT = {
    "foundation": set(),
    "model": {"foundation"},
    "engine": {"foundation", "model"},
    "store": {"foundation", "model"},
    "analysis": {"foundation", "model", "store"},
    "measure": {"foundation", "model", "engine", "store", "analysis"},
    "report": {"foundation", "model", "engine", "store", "analysis", "measure"},
    "cli": {"foundation", "model", "engine", "store", "analysis", "measure", "report"},
    "facade": {"foundation", "model", "engine"},
}
ROOMS = set(MAY_IMPORT) - {"foundation", "facade"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def room_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "facade"
    if parts[1] in ROOMS:
        return parts[1]
    assert len(parts) == 2 and parts[1] in FOUNDATION, f"{module}: a module outside every room"
    return "foundation"


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The harness modules a module imports, anywhere in its body."""
    out = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "harness"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "harness":
                continue
            for a in node.names:     # `from harness.x import y` imports the module harness.x.y if there is one
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return {m for m in out if m != module}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {i for i in imports_of(m, p, set(mods)) if i in mods or i == "harness._native"}
            for m, p in mods.items()}


def test_every_module_lives_in_a_room_or_the_foundation():
    rooms = {room_of(m) for m in modules()}
    assert rooms == ROOMS | {"foundation", "facade"}


def test_no_import_points_up_the_rooms(graph):
    upward = [f"{m} ({room_of(m)}) imports {i} ({room_of(i)})"
              for m, deps in graph.items() for i in sorted(deps)
              if room_of(i) != room_of(m) and room_of(i) not in MAY_IMPORT[room_of(m)]]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycle(graph):
    # Tarjan's strongly connected components: a component of more than one module is a cycle
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from .stats import judge\n\ndef f():\n    from harness.measure import bench\n    import harness.cli.main\n")
    known = {"harness.analysis.stats", "harness.measure.bench", "harness.cli.main"}
    found = imports_of("harness.analysis.compare", src, known)
    assert found == {"harness.analysis.stats", "harness.measure.bench", "harness.cli.main"}


def test_tests_import_helpers_from_support_never_from_test_modules():
    test_modules = {p.stem for p in (ROOT / "tests").rglob("test_*.py")} | {"conftest"}
    offenders = []
    for p in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{p.relative_to(ROOT)} imports {n}" for n in names if n.split(".")[0] in test_modules]
    assert not offenders, offenders


def test_every_docs_reference_in_a_comment_lands_on_a_section():
    """Comments cite docs/qwen35.md by section (§2.4.7); each cited number is a heading there, and no
    comment cites a document outside the repository (the SPEC.md the project started from)."""
    import re
    doc = (ROOT / "docs" / "qwen35.md").read_text()
    headings = set(re.findall(r"^#+ §([\d.]+)", doc, flags=re.M))
    cited, outside = set(), []
    for p in [*PACKAGE.rglob("*.py"), *(ROOT / "native").rglob("*.[ch]"), *(ROOT / "tests").rglob("*.py")]:
        text = p.read_text()
        for m in re.finditer(r"docs/qwen35\.md,? (§[\d.]+(?:, §[\d.]+)*)", text):
            cited |= set(re.findall(r"§([\d.]+[\d])", m.group(1)))
        if p.name != "test_layout.py" and re.search(r"\bSPEC(\.md)?\b|\.\./shared/[\w/]+\.md", text):
            outside.append(str(p.relative_to(ROOT)))
    assert cited and not (cited - headings), sorted(cited - headings)
    assert not outside, outside


def test_the_public_api_is_what_the_package_docstring_promises():
    import harness
    assert set(harness.__all__) >= {"load_model", "Model", "Session", "Reference", "synthesize", "cpu_features",
                                    "__version__", "HarnessError", "ModelFileError", "UsageError"}
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    from harness.engine import Session
    from harness.engine.reference import Reference
    from harness.model import Model, load_model
    assert (harness.Session, harness.Reference, harness.Model, harness.load_model) == (Session, Reference, Model,
                                                                                        load_model)
    assert harness.errors.UsageError is harness.UsageError
    assert set(harness.cpu_features()) >= {"compiled", "supported", "best"}
    assert harness.__version__ == __import__("importlib.metadata").metadata.version("qwen35-harness")
