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
