"""The serving path's command lines and Open WebUI's environment, read from the
manifests, so that the e2e stack runs what ``manifests/base`` deploys: only the
addresses (cluster DNS names become loopback ports) and the secrets change."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

BASE = Path(__file__).resolve().parent.parent.parent / "manifests" / "base"
TEST_SECRETS = {("open-webui-secret", "webui-secret-key"): "e2e-session-key"}
"""The Secrets the user creates (docs/deploy.md), as the test creates them; optional
ones it does not create (the OpenAI key) stay unset, as in a cluster without them."""


class ManifestError(AssertionError):
    """The manifests do not have the shape the e2e stack reads."""


def container(file: str, deployment: str, name: str) -> dict[str, Any]:
    for document in _documents(BASE / file):
        if document.get("kind") == "Deployment" and document["metadata"]["name"] == deployment:
            for candidate in document["spec"]["template"]["spec"]["containers"]:
                if candidate["name"] == name:
                    return dict(candidate)
    raise ManifestError(f"{file}: no container {name!r} in Deployment {deployment!r}")


def proxy_args(*, port: int, upstream: str, writer: str, ready_model: str) -> list[str]:
    """The ollama pod's proxy sidecar: its Ollama and the writer on loopback."""
    spec = container("ollama.yaml", "ollama", "proxy")
    args = [a.replace("$(READY_MODEL)", ready_model) for a in spec["args"]]
    return _with(
        args,
        {"--port": str(port), "--upstream": upstream, "--management-upstream": writer},
    )


def router_args(*, port: int, endpoints: Sequence[str], writer: str, max_queue: int) -> list[str]:
    """The router: ``--endpoint`` per proxy instead of the Service's EndpointSlices,
    and a queue short enough that a handful of chats overflows it."""
    spec = container("router.yaml", "scaler-router", "router")
    args = _without(list(spec["args"]), ("--service", "--namespace", "--port-name"))
    args = _with(
        args,
        {"--port": str(port), "--management-upstream": writer, "--max-queue": str(max_queue)},
    )
    for url in endpoints:
        args += ["--endpoint", url]
    return args


def open_webui_environment(*, ollama: str, data_dir: Path, home: Path) -> dict[str, str]:
    """Open WebUI's container environment from the manifest, pointed at ``ollama``,
    plus what only the test needs: its folders and no network (it would download its
    embedding model and check for updates)."""
    spec = container("open-webui.yaml", "open-webui", "open-webui")
    env = dict(_values(spec.get("env", [])))
    env.update(
        OLLAMA_BASE_URL=ollama,
        HOME=str(home),
        DATA_DIR=str(data_dir),
        HF_HUB_OFFLINE="1",
        OFFLINE_MODE="true",
        PATH="/usr/bin:/bin",
    )
    return env


def _values(env: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, str]]:
    for item in env:
        if "value" in item:
            yield item["name"], str(item["value"])
            continue
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            raise ManifestError(f"open-webui env {item['name']}: only values and Secrets")
        secret = TEST_SECRETS.get((ref["name"], ref["key"]))
        if secret is not None:
            yield item["name"], secret
        elif not ref.get("optional", False):
            raise ManifestError(f"open-webui env {item['name']}: no test value for {ref}")


def _with(args: list[str], values: Mapping[str, str]) -> list[str]:
    """``args`` with each flag's value replaced, listening on loopback only."""
    missing = [flag for flag in values if flag not in args]
    if missing:
        raise ManifestError(f"the manifest's args lack {missing}: {args}")
    out = list(args)
    for flag, value in values.items():
        out[out.index(flag) + 1] = value
    return [*out, "--host", "127.0.0.1"]


def _without(args: list[str], flags: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        else:
            out.append(arg)
    return out


def _documents(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as stream:
        yield from (d for d in yaml.safe_load_all(stream) if d)
