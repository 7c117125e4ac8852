"""kubernetes-asyncio's REST client and config loaders, without its generated classes.

Why: ``import kubernetes_asyncio.client`` (or of anything under ``kubernetes_asyncio``)
runs the packages' ``__init__``, which import every generated API class (about 70) and
model class (about 1,000): 36 MiB of resident memory, a third of ``scaler run``'s at
100 targets. scaler needs none of them: every call it makes goes through
``ApiClient.call_api`` as JSON (``scaler.kube.api_call``). What it does need is
``ApiClient`` (configuration, auth, TLS, the aiohttp session), ``Configuration``,
``ApiException`` and the kubeconfig and in-cluster loaders of
``kubernetes_asyncio.config``: under 1 MiB.

How: ``install`` puts three package modules into ``sys.modules`` before anything
imports kubernetes-asyncio: ``kubernetes_asyncio``, ``kubernetes_asyncio.client`` and
``kubernetes_asyncio.client.models``, each made from its real spec (so ``__path__``,
``__file__`` and submodule imports are the library's own) but with its ``__init__``
not run. Each gets a module ``__getattr__`` (PEP 562) that serves, on first use:

- a submodule (``kubernetes_asyncio.client.rest``, ``kubernetes_asyncio.config``…):
  imported as usual;
- ``ApiClient``, ``Configuration`` and the exceptions, from their own submodules;
- any other name (``CoreV1Api``, ``V1Pod``, ``__version__``…): the package's own
  ``__init__`` is run then, once, in place, and the name read from the result.

So code in the same process that does want a generated class (a test, or
``ApiClient``'s deserialisation into models) gets it, at the old cost; nothing is
lost, it is only not paid for up front. ``tests/test_kube_lean_client.py`` checks both
halves in fresh interpreters.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

PACKAGES = ("kubernetes_asyncio", "kubernetes_asyncio.client", "kubernetes_asyncio.client.models")
"""The packages whose ``__init__`` waits until a name only it defines is asked for."""

_LIGHT = {
    "ApiClient": "api_client",
    "Configuration": "configuration",
    "OpenApiException": "exceptions",
    "ApiTypeError": "exceptions",
    "ApiValueError": "exceptions",
    "ApiKeyError": "exceptions",
    "ApiAttributeError": "exceptions",
    "ApiException": "exceptions",
}
"""Names of ``kubernetes_asyncio.client`` served from their one submodule (what the
config loaders and ``scaler.kube`` import), not by running the package's ``__init__``."""

# One package's __init__ runs at a time (another thread asking meanwhile waits for it).
_lock = threading.RLock()


def install() -> bool:
    """Put the packages in ``sys.modules`` with their ``__init__`` deferred.

    Does nothing, and returns False, once any part of kubernetes-asyncio is imported
    (then its ``__init__`` has run, or is running, the usual way) or when it is not
    installed at all.
    """
    if any(name.partition(".")[0] == "kubernetes_asyncio" for name in sys.modules):
        return False
    parent: ModuleType | None = None
    for name in PACKAGES:
        path = None if parent is None else parent.__path__
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            _forget(PACKAGES)
            return False
        module = importlib.util.module_from_spec(spec)
        module.__dict__["__getattr__"] = _getattr_of(module)
        sys.modules[name] = module
        if parent is not None:
            setattr(parent, name.rpartition(".")[2], module)
        parent = module
    return True


def deferred(name: str) -> bool:
    """Whether package ``name`` is one of ours whose ``__init__`` has not run yet."""
    module = sys.modules.get(name)
    return module is not None and module.__dict__.get("__lean_state__") == "deferred"


def _forget(names: tuple[str, ...]) -> None:
    for name in names:
        module = sys.modules.get(name)
        if module is not None and "__lean_state__" in module.__dict__:
            del sys.modules[name]


def _getattr_of(module: ModuleType) -> Any:
    module.__dict__["__lean_state__"] = "deferred"

    def __getattr__(attribute: str) -> Any:  # PEP 562: the module-level hook
        return _resolve(module, attribute)

    return __getattr__


def _resolve(module: ModuleType, attribute: str) -> Any:
    """``module.attribute``, which the module does not hold yet (see the module doc)."""
    package = module.__name__
    state = module.__dict__.get("__lean_state__")
    if state == "deferred":
        if package == "kubernetes_asyncio.client" and attribute in _LIGHT:
            value = getattr(importlib.import_module(f"{package}.{_LIGHT[attribute]}"), attribute)
            setattr(module, attribute, value)
            return value
        if not attribute.startswith("__") and _is_submodule(module, attribute):
            return importlib.import_module(f"{package}.{attribute}")
    if state != "complete":  # deferred, or running in this thread or another
        _run_init(module)
    try:
        return module.__dict__[attribute]
    except KeyError:
        raise AttributeError(f"module {package!r} has no attribute {attribute!r}") from None


def _is_submodule(module: ModuleType, attribute: str) -> bool:
    return (
        importlib.machinery.PathFinder.find_spec(f"{module.__name__}.{attribute}", module.__path__)
        is not None
    )


def _run_init(module: ModuleType) -> None:
    """Run the package's own ``__init__`` in ``module``, once. A name its own run asks
    for is served from what it has defined so far (as during any import); another
    thread waits here for the run to end."""
    with _lock:
        if module.__dict__.get("__lean_state__") != "deferred":
            return
        module.__dict__["__lean_state__"] = "running"
        spec = module.__spec__
        assert spec is not None and spec.loader is not None  # set by install
        try:
            spec.loader.exec_module(module)
        except BaseException:
            module.__dict__["__lean_state__"] = "deferred"  # as a failed import: try again
            raise
        module.__dict__["__lean_state__"] = "complete"
