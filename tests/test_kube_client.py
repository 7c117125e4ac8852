"""Where the ApiClient's configuration comes from, and that it reaches the fake apiserver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient, AppsV1Api
from kubernetes_asyncio.config import ConfigException

from scaler.kube.api_call import call
from scaler.kube.client import api_client, env_proxy, load_configuration
from scaler.kube.errors import KubeError
from tests.support.fake_kube import FakeKube
from tests.support.loopback import no_env_proxy


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeKube]:
    no_env_proxy(monkeypatch)
    async with FakeKube() as kube:
        kube.add_deployment("ml", "ollama", replicas=2)
        yield kube


async def _replicas(api: ApiClient) -> int:
    scale = await call(
        "read scale",
        AppsV1Api(api).read_namespaced_deployment_scale("ollama", "ml"),
        timeout=2.0,
    )
    replicas: int = scale.spec.replicas
    return replicas


async def test_an_explicit_kubeconfig_wins_over_the_environment(
    fake: FakeKube, tmp_path: Path
) -> None:
    kubeconfig = fake.write_kubeconfig(tmp_path / "explicit")
    environ = {"KUBECONFIG": str(tmp_path / "absent"), "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    async with api_client(kubeconfig, environ=environ) as api:
        assert await _replicas(api) == 2


async def test_kubeconfig_from_the_environment(fake: FakeKube, tmp_path: Path) -> None:
    kubeconfig = fake.write_kubeconfig(tmp_path / "from-env")
    async with api_client(environ={"KUBECONFIG": str(kubeconfig)}) as api:
        assert await _replicas(api) == 2


async def test_the_home_kubeconfig_outside_a_cluster(fake: FakeKube, tmp_path: Path) -> None:
    (tmp_path / ".kube").mkdir()
    fake.write_kubeconfig(tmp_path / ".kube" / "config")
    async with api_client(environ={"HOME": str(tmp_path)}) as api:
        assert await _replicas(api) == 2


async def test_the_client_is_closed_on_exit(fake: FakeKube, tmp_path: Path) -> None:
    async with api_client(fake.write_kubeconfig(tmp_path / "config")) as api:
        session = api.rest_client.pool_manager
        assert not session.closed
    assert session.closed


async def test_in_cluster_uses_the_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token", encoding="utf-8")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    configuration = await load_configuration(environ=environ, service_account_dir=tmp_path)
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.api_key["BearerToken"] == "Bearer sa-token"
    assert configuration.ssl_ca_cert == str(tmp_path / "ca.crt")


async def test_in_cluster_without_a_token_is_a_kube_error(tmp_path: Path) -> None:
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(KubeError, match="in-cluster service account") as caught:
        await load_configuration(environ=environ, service_account_dir=tmp_path)
    assert isinstance(caught.value.__cause__, ConfigException)


async def test_no_configuration_anywhere_is_a_kube_error(tmp_path: Path) -> None:
    with pytest.raises(KubeError, match="no Kubernetes configuration"):
        await load_configuration(environ={"HOME": str(tmp_path)})


async def test_an_unknown_context_is_a_kube_error(fake: FakeKube, tmp_path: Path) -> None:
    kubeconfig = fake.write_kubeconfig(tmp_path / "config")
    with pytest.raises(KubeError, match="cannot load Kubernetes configuration"):
        await load_configuration(kubeconfig, context="nope")


async def test_a_wrong_token_is_answered_401_unauthorized(fake: FakeKube, tmp_path: Path) -> None:
    kubeconfig = fake.write_kubeconfig(tmp_path / "config")
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    config["users"][0]["user"]["token"] = "stolen"
    kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
    async with api_client(kubeconfig) as api:
        with pytest.raises(KubeError, match="Unauthorized") as caught:
            await _replicas(api)
    assert caught.value.status == 401


# --- the session, and proxies from the environment ---------------------------------------


@pytest.fixture
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for scheme in ("HTTP", "HTTPS", "NO", "ALL"):
        monkeypatch.delenv(f"{scheme}_PROXY", raising=False)
        monkeypatch.delenv(f"{scheme.lower()}_proxy", raising=False)
    return monkeypatch


async def test_the_session_does_not_read_the_environment_on_each_request(
    fake: FakeKube, tmp_path: Path
) -> None:
    async with api_client(fake.write_kubeconfig(tmp_path / "config")) as api:
        assert api.rest_client.pool_manager.trust_env is False
        assert await _replicas(api) == 2


async def test_a_proxy_from_the_environment_is_used(
    fake: FakeKube, tmp_path: Path, no_proxy_variables: pytest.MonkeyPatch
) -> None:
    # The apiserver's name does not resolve: only the proxy (the fake) can reach it.
    kubeconfig = fake.write_kubeconfig(tmp_path / "config")
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    config["clusters"][0]["cluster"]["server"] = "http://kubernetes.invalid:6443"
    kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
    no_proxy_variables.setenv("HTTP_PROXY", fake.url)
    async with api_client(kubeconfig) as api:
        assert api.rest_client.proxy == fake.url
        assert await _replicas(api) == 2


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param({}, None, id="none"),
        pytest.param({"HTTPS_PROXY": "http://proxy:3128"}, "http://proxy:3128", id="https"),
        pytest.param(
            {"HTTPS_PROXY": "http://u:p@proxy:3128"}, "http://u:p@proxy:3128", id="credentials"
        ),
        pytest.param({"HTTP_PROXY": "http://proxy:3128"}, None, id="only-for-http"),
        pytest.param(
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "kube.example,10.0.0.0/8"},
            None,
            id="no-proxy",
        ),
    ],
)
def test_the_proxy_the_environment_names_for_the_apiserver(
    no_proxy_variables: pytest.MonkeyPatch, variables: dict[str, str], expected: str | None
) -> None:
    for name, value in variables.items():
        no_proxy_variables.setenv(name, value)
    assert env_proxy("https://kube.example:6443") == expected


async def test_a_kubeconfig_proxy_url_wins_over_the_environment(
    fake: FakeKube, tmp_path: Path, no_proxy_variables: pytest.MonkeyPatch
) -> None:
    kubeconfig = fake.write_kubeconfig(tmp_path / "config")
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    config["clusters"][0]["cluster"]["proxy-url"] = fake.url
    kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
    no_proxy_variables.setenv("HTTP_PROXY", "http://elsewhere.invalid:3128")
    async with api_client(kubeconfig) as api:
        assert api.rest_client.proxy == fake.url
        assert await _replicas(api) == 2
