"""The import graph of ``lucidlink``: no cycles, and the SDK never imports the hub.

The graph is read from the source with :mod:`ast` (nothing is imported): every
``import a.b`` and ``from a import b`` (relative ones resolved; ``from pkg import
module`` counted as an import of the module) of every module under ``lucidlink/``,
except those under ``if TYPE_CHECKING:``, which never run. An import inside a function
counts: it runs too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lucidlink"


def module_name(path: Path) -> str:
    """``lucidlink/hub/api/routes.py`` -> ``lucidlink.hub.api.routes``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of ``tree``, less the bodies of ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _runtime_imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _runtime_imports(node)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of the package that module ``name`` imports at run time."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # ``from pkg import module`` imports the module; ``from mod import name``, mod.
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem
                       for alias in node.names]
        for target in targets:
            # The deepest module of the package the name reaches (``a.b.C`` -> ``a.b``).
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports at run time."""
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (its modules in order, the first repeated), or None.

    An import of a package runs its ``__init__`` first, so importing ``a.b.c`` also
    depends on ``a`` and ``a.b``; those edges are left out (an ``__init__`` that imports
    its own submodules would otherwise always make a cycle).
    """
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if color.get(nxt, black) == grey:
                return stack[stack.index(nxt):] + [nxt]
            if color.get(nxt) == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for start in sorted(graph):
        if color[start] == white:
            found = visit(start)
            if found:
                return found
    return None


def test_the_reader_resolves_relative_and_from_package_imports() -> None:
    graph = import_graph()
    assert "lucidlink.hub.core.tree" in graph["lucidlink.hub.core.namespace"]  # from pkg import mod
    assert "lucidlink.hub.api.app_keys" in graph["lucidlink.hub.app"]  # from pkg.mod import name
    assert "lucidlink.hub.state" not in graph["lucidlink.hub.api.app_keys"]  # TYPE_CHECKING only


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycle_in_the_hub() -> None:
    graph = import_graph()
    hub = {k: {m for m in v if m.startswith("lucidlink.hub")}
           for k, v in graph.items() if k.startswith("lucidlink.hub")}
    cycle = find_cycle(hub)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_sdk_never_imports_the_hub() -> None:
    wrong = {name: sorted(m for m in deps if m == "lucidlink.hub" or m.startswith("lucidlink.hub."))
             for name, deps in import_graph().items() if name.startswith("lucidlink.aio")}
    assert not {k: v for k, v in wrong.items() if v}


def test_anyio_loads_its_backend_when_the_package_is_imported_not_on_a_loop() -> None:
    # anyio imports its backend at the first to_thread call, which here runs on an event
    # loop (the hub's while it starts, the SDK's at a first read): a 50 ms step of it.
    for module in ("lucidlink", "lucidlink.aio", "lucidlink.hub.app"):
        code = (f"import sys, {module}; "
                "sys.exit('anyio._backends._asyncio' not in sys.modules)")
        assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0, module
