"""kubernetes-asyncio without its generated classes (scaler.kube.lean_client).

Each check runs in a fresh interpreter: what a process has imported is the subject,
and this test process has long since imported the whole library.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

GENERATED = ("kubernetes_asyncio.client.models.", "kubernetes_asyncio.client.api.")


def _run(code: str) -> Any:
    """Run ``code`` in a fresh interpreter; the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_scaler_run_imports_no_generated_api_or_model() -> None:
    loaded = _run(
        """
        import json, sys
        import scaler.cli, scaler.controller.app
        from scaler.kube import lean_client
        print(json.dumps({
            "modules": sorted(m for m in sys.modules if m.startswith("kubernetes_asyncio")),
            "deferred": [lean_client.deferred(p) for p in lean_client.PACKAGES],
        }))
        """
    )
    generated = [m for m in loaded["modules"] if m.startswith(GENERATED)]
    assert generated == []
    assert "kubernetes_asyncio.dynamic" not in loaded["modules"]
    assert "kubernetes_asyncio.client.api_client" in loaded["modules"]
    assert "kubernetes_asyncio.config.kube_config" in loaded["modules"]
    assert loaded["deferred"] == [True, True, True]


def test_a_generated_name_asked_for_loads_the_whole_package_as_before() -> None:
    seen = _run(
        """
        import asyncio, json
        import scaler.kube.client  # installs the deferred packages, then imports
        from kubernetes_asyncio.client import ApiClient, CoreV1Api, V1ObjectMeta, V1Pod
        import kubernetes_asyncio
        import kubernetes_asyncio.client.models as models
        from kubernetes_asyncio.client.api_client import ApiClient as Direct
        from kubernetes_asyncio.client.exceptions import ApiException
        from kubernetes_asyncio.client import ApiException as Exported
        from scaler.kube import lean_client

        async def through_the_client():
            # ApiClient turns JSON into models by name, from the models package.
            async with ApiClient() as api:
                pod = api._ApiClient__deserialize({"metadata": {"name": "a"}}, "V1Pod")
                meta = V1ObjectMeta(name="b")
                return pod, api.sanitize_for_serialization(V1Pod(metadata=meta))

        pod, body = asyncio.run(through_the_client())
        try:
            kubernetes_asyncio.client.NoSuchName
            missing = None
        except AttributeError as err:
            missing = str(err)
        print(json.dumps({
            "pod": [type(pod).__name__, pod.metadata.name],
            "body": body,
            "same": [models.V1Pod is V1Pod, Direct is ApiClient, Exported is ApiException],
            "api": CoreV1Api.__name__,
            "version": kubernetes_asyncio.__version__,
            "watch": kubernetes_asyncio.watch.Watch.__name__,
            "missing": missing,
            "deferred": [lean_client.deferred(p) for p in lean_client.PACKAGES],
        }))
        """
    )
    assert seen["pod"] == ["V1Pod", "a"]
    assert seen["body"] == {"metadata": {"name": "b"}}
    assert seen["same"] == [True, True, True]
    assert seen["api"] == "CoreV1Api"
    assert seen["version"]
    assert seen["watch"] == "Watch"
    assert seen["missing"] == "module 'kubernetes_asyncio.client' has no attribute 'NoSuchName'"
    assert seen["deferred"] == [False, False, False]


def test_install_leaves_an_already_imported_library_alone() -> None:
    seen = _run(
        """
        import json
        import kubernetes_asyncio.client
        from scaler.kube import lean_client  # its package's __init__ calls install()
        print(json.dumps({
            "again": lean_client.install(),
            "deferred": [lean_client.deferred(p) for p in lean_client.PACKAGES],
            "models": hasattr(kubernetes_asyncio.client.models, "V1Pod"),
        }))
        """
    )
    assert seen == {"again": False, "deferred": [False, False, False], "models": True}


def test_the_kubeconfig_loaders_work_on_the_deferred_packages(tmp_path: Any) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "u", "user": {"token": "secret-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    seen = _run(
        f"""
        import asyncio, json, sys
        from scaler.kube.client import load_configuration
        configuration = asyncio.run(load_configuration({str(kubeconfig)!r}))
        print(json.dumps({{
            "host": configuration.host,
            "auth": json.dumps(configuration.api_key),
            "generated": [m for m in sys.modules if m.startswith({GENERATED!r})],
        }}))
        """
    )
    assert seen["host"] == "https://127.0.0.1:6443"
    assert "secret-token" in seen["auth"]
    assert seen["generated"] == []
