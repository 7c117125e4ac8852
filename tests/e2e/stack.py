"""The chatbot stack on loopback, as ``manifests/base`` deploys it, with the real Open
WebUI in front: fake Ollama pods and the models' writer sharing one model store (the
models volume), a ``scaler proxy`` process beside each pod's Ollama, one ``scaler
router`` process, and ``open-webui serve`` configured from its manifest.

    with running_stack(tmp_path) as stack:
        stack.open_webui   # http://127.0.0.1:PORT
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.e2e import manifest_args
from tests.e2e.install import ensure_installed
from tests.support.fake_ollama import RunningFakeOllama, running_fake_ollama
from tests.support.fake_ollama_store import ModelStore
from tests.support.router_process import free_port, running_process, running_scaler

READY_MODEL = "llama3.2:1b"
"""The ready model (the manifests' ConfigMap names one; any installed model will do)."""
PODS = 2
ROUTER_QUEUE = 2
"""The router's --max-queue here (64 deployed): 2 pods x 1 slot + 2 waiting = 4 chats."""
OPEN_WEBUI_START = 120.0
"""Seconds for Open WebUI to migrate its new database and answer /health."""
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Stack:
    pods: list[RunningFakeOllama]
    writer: RunningFakeOllama
    store: ModelStore
    proxies: list[str]
    router: str
    open_webui: str
    logs: Path


@contextlib.contextmanager
def running_stack(
    workdir: Path, *, tokens: int = 40, tokens_per_second: float = 40.0
) -> Iterator[Stack]:
    """Everything up and ready; ``tokens`` at ``tokens_per_second`` make an answer
    last about a second, long enough to stop it or to queue behind it."""
    store = ModelStore([READY_MODEL])
    logs = workdir / "logs"
    logs.mkdir()
    fake = dict(slots=1, tokens=tokens, tokens_per_second=tokens_per_second, max_loaded_models=1)
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(running_fake_ollama(store=store, models=()))
        pods = [
            stack.enter_context(running_fake_ollama(store=store, models=(), **fake))
            for _ in range(PODS)
        ]
        for pod in pods:
            _warm_up(pod.url)  # the ollama container's postStart load (manifests/base/ollama.yaml)
        proxies = [stack.enter_context(_proxy(pod, writer, logs, i)) for i, pod in enumerate(pods)]
        port = free_port()
        router = stack.enter_context(
            running_scaler(
                manifest_args.router_args(
                    port=port, endpoints=proxies, writer=writer.url, max_queue=ROUTER_QUEUE
                ),
                url=f"http://127.0.0.1:{port}",
                log=logs / "router.log",
            )
        )
        open_webui = stack.enter_context(_open_webui(router, workdir, logs))
        yield Stack(pods, writer, store, proxies, router, open_webui, logs)


def _proxy(
    pod: RunningFakeOllama, writer: RunningFakeOllama, logs: Path, index: int
) -> contextlib.AbstractContextManager[str]:
    port = free_port()
    args = manifest_args.proxy_args(
        port=port, upstream=pod.url, writer=writer.url, ready_model=READY_MODEL
    )
    return running_scaler(args, url=f"http://127.0.0.1:{port}", log=logs / f"proxy-{index}.log")


def _warm_up(url: str) -> None:
    body = f'{{"model": "{READY_MODEL}", "keep_alive": -1, "stream": false}}'.encode()
    request = urllib.request.Request(f"{url}/api/generate", data=body, method="POST")
    with _OPENER.open(request, timeout=10.0) as answer:
        assert answer.status == 200


def _open_webui(router: str, workdir: Path, logs: Path) -> contextlib.AbstractContextManager[str]:
    executable = ensure_installed()
    port = free_port()
    (workdir / "open-webui-data").mkdir()
    (workdir / "home").mkdir()
    env = manifest_args.open_webui_environment(
        ollama=router, data_dir=workdir / "open-webui-data", home=workdir / "home"
    )
    env["PATH"] = f"{executable.parent}{os.pathsep}{env['PATH']}"
    return running_process(
        [str(executable), "serve", "--host", "127.0.0.1", "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        log=logs / "open-webui.log",
        env=env,
        ready_path="/health",
        start_timeout=OPEN_WEBUI_START,
    )
