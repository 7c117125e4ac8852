"""The Open WebUI the tests install is the one the manifests deploy."""

from tests.e2e.install import manifest_version, pinned_version


def test_the_tests_pin_the_open_webui_the_manifests_deploy() -> None:
    assert pinned_version() == manifest_version()
