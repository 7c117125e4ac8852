"""The policy engine stays pure: it imports nothing that does I/O or reads a clock."""

from __future__ import annotations

import ast
from pathlib import Path

import scaler.policy

POLICY_DIR = Path(scaler.policy.__file__).parent
FORBIDDEN = {
    "asyncio",
    "aiohttp",
    "httpx",
    "kubernetes_asyncio",
    "prometheus_client",
    "prometheus_api_client",
    "time",
    "datetime",
    "random",
    "socket",
    "os",
    "pydantic",
    "yaml",
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_policy_imports_only_the_standard_library_and_itself() -> None:
    modules = sorted(POLICY_DIR.glob("*.py"))
    assert len(modules) >= 8
    for module in modules:
        for name in _imports(module):
            top = name.split(".")[0]
            assert top not in FORBIDDEN, f"{module.name} imports {name}"
            if top == "scaler":
                assert name.startswith("scaler.policy"), f"{module.name} imports {name}"


SCALER = Path(scaler.policy.__file__).parent.parent

# Which of our packages each may import: the layers, top to bottom. Anything not
# listed is a new edge: decide it here, on purpose, or move the code. Leaves (errors,
# logs, quantity) import nothing of ours but each other.
ALLOWED: dict[str, set[str]] = {
    "cli": {"controller", "simulate", "proxy", "router", "config", "policy", "errors", "logs"},
    "controller": {"config", "kube", "sources", "policy", "serving", "errors", "logs"},
    "simulate": {"config", "policy", "errors"},
    "router": {"proxy", "kube", "serving", "config", "errors", "logs"},
    "proxy": {"serving", "config", "errors", "logs"},
    "serving": {"errors", "logs"},
    "sources": {"policy", "errors"},
    "kube": {"policy", "quantity", "errors"},
    "config": {"policy", "quantity", "errors"},
    "policy": set(),
    "errors": set(),
    "logs": set(),
    "quantity": set(),
}


def _package(path: Path) -> str:
    parts = path.relative_to(SCALER).with_suffix("").parts
    return parts[0]


def _edges() -> dict[tuple[str, str], str]:
    """(importer, imported) package pairs, each with one module that makes it."""
    edges = {}
    for path in sorted(SCALER.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == SCALER:
            continue
        importer = _package(path)
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "scaler" or len(parts) < 2:
                continue
            if parts[1] != importer:
                edges.setdefault((importer, parts[1]), str(path.relative_to(SCALER)))
    return edges


def test_packages_import_only_down_the_layers() -> None:
    edges = _edges()
    assert len(edges) >= 20  # the walk found the packages
    unknown = {importer for importer, _ in edges} - set(ALLOWED)
    assert not unknown, f"a new package: add it to ALLOWED: {sorted(unknown)}"
    wrong = {
        f"{module}: {importer} -> {imported}"
        for (importer, imported), module in edges.items()
        if imported not in ALLOWED[importer]
    }
    assert not wrong, sorted(wrong)


def test_the_allowed_edges_have_no_cycle() -> None:
    # A table with a cycle would let two packages import each other, one module at a time.
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, " -> ".join((*path, package))
        if package in done:
            return
        for imported in ALLOWED[package]:
            visit(imported, (*path, package))
        done.add(package)

    for package in ALLOWED:
        visit(package, ())


def _scaler_imports(package: str) -> dict[str, set[str]]:
    """Our modules each module of ``package`` imports, by module file name."""
    directory = Path(scaler.policy.__file__).parent.parent / package
    return {
        module.name: {name for name in _imports(module) if name.split(".")[0] == "scaler"}
        for module in sorted(directory.glob("*.py"))
    }


def test_the_router_builds_on_the_proxy_and_kube_and_nothing_imports_it_but_the_cli() -> None:
    allowed = (  # as the table above: router -> proxy, kube, serving, config, errors
        "scaler.router",
        "scaler.proxy",
        "scaler.kube",
        "scaler.serving",
        "scaler.config",
        "scaler.errors",
    )
    for module, names in _scaler_imports("router").items():
        for name in names:
            assert name.startswith(allowed), f"router/{module} imports {name}"
    root = Path(scaler.policy.__file__).parent.parent
    for path in root.rglob("*.py"):
        if path.parent.name == "router" or path.name == "cli.py":
            continue
        for name in _imports(path):
            assert not name.startswith("scaler.router"), f"{path.name} imports {name}"
