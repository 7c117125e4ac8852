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


def _scaler_imports(package: str) -> dict[str, set[str]]:
    """Our modules each module of ``package`` imports, by module file name."""
    directory = Path(scaler.policy.__file__).parent.parent / package
    return {
        module.name: {name for name in _imports(module) if name.split(".")[0] == "scaler"}
        for module in sorted(directory.glob("*.py"))
    }


def test_the_router_builds_on_the_proxy_and_kube_and_nothing_imports_it_but_the_cli() -> None:
    allowed = ("scaler.router", "scaler.proxy", "scaler.kube", "scaler.errors", "scaler.serving")
    for module, names in _scaler_imports("router").items():
        for name in names:
            assert name.startswith(allowed), f"router/{module} imports {name}"
    root = Path(scaler.policy.__file__).parent.parent
    for path in root.rglob("*.py"):
        if path.parent.name == "router" or path.name == "cli.py":
            continue
        for name in _imports(path):
            assert not name.startswith("scaler.router"), f"{path.name} imports {name}"
