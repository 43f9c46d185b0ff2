"""The package's imports point one way: no import cycles, no private names taken across modules.

Every ``import`` and ``from ... import`` of ``jwst_embed`` modules counts, at module level and
inside functions alike (a function-level import that dodges a cycle is still a cycle). A name
with a leading underscore belongs to its module: another module that needs it needs a public
name instead.
"""

import ast
from pathlib import Path

import jwst_embed

PACKAGE = Path(jwst_embed.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(modules: dict[str, Path]):
    """(importing module, imported module, imported name or None) for every jwst_embed import."""
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("jwst_embed"):
                        yield module, alias.name, None
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("jwst_embed"):
                    continue
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    if submodule in modules:
                        yield module, submodule, None
                    else:
                        yield module, target, alias.name


def _graph(modules):
    """Import edges; importing ``a.b.c`` also runs the package ``a.b`` (its ``__init__``).

    The root package is left out of those implicit edges: its ``__init__`` imports only
    `jwst_embed.bands` when it runs, the rest on first attribute access (and no module of the
    package imports from it, `test_no_module_imports_from_the_root_package`).
    """
    edges = {name: set() for name in modules}
    for source, target, _ in _imports(modules):
        if target not in modules:
            continue
        parts = target.split(".")
        for depth in range(2, len(parts) + 1):
            parent = ".".join(parts[:depth])
            if parent in modules and parent != source and not source.startswith(parent + "."):
                edges[source].add(parent)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    modules = _modules()
    assert "jwst_embed.embedder" in modules and "jwst_embed.tuning.fine_tune" in modules
    edges = _graph(modules)
    assert "jwst_embed.prediction_tables" in edges["jwst_embed.embedder"]  # function-level ones count too
    assert _cycles(edges) == []


def test_no_module_imports_from_the_root_package():
    modules = _modules()
    from_root = sorted(f"{source} imports jwst_embed.{name}" for source, target, name in _imports(modules)
                       if target == "jwst_embed" and name and source != "jwst_embed")  # fmt: skip
    assert from_root == []


def test_no_private_names_imported_across_modules():
    modules = _modules()
    private = sorted(
        f"{source} imports {target}.{name}"
        for source, target, name in _imports(modules)
        if name and name.startswith("_") and not name.startswith("__") and target != source
    )
    assert private == []
