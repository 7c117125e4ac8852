"""Issue 17, points 4 and 7, in the manifests: Open WebUI's background tasks set on
purpose (each is one more generation through the shared queue), no total timeout on
its calls to Ollama (a queued answer may wait minutes, then stream), and one pinned
Open WebUI version, the one tests/e2e installs.

What each setting means is read from Open WebUI 0.12.4's source (config.py,
env.py, routers/tasks.py); the manifest's comments give the why.
The stack's builds and helpers are tests/test_manifests.py's.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.install import pinned_version
from tests.test_manifests import BUILDS, Obj, containers, pod_specs

IMAGE = "ghcr.io/open-webui/open-webui"
# The version tests/e2e installs from PyPI: the two stay equal.
VERSION = f"v{pinned_version()}"

# Titles stay (one short call per new chat); follow-ups and tags, which reread every
# answer, go; autocomplete and query generation (a call before the answer) too.
BACKGROUND_TASKS = {
    "ENABLE_TITLE_GENERATION": "true",
    "ENABLE_FOLLOW_UP_GENERATION": "false",
    "ENABLE_TAGS_GENERATION": "false",
    "ENABLE_AUTOCOMPLETE_GENERATION": "false",
    "ENABLE_SEARCH_QUERY_GENERATION": "false",
    "ENABLE_RETRIEVAL_QUERY_GENERATION": "false",
}

# Open WebUI's own default for a title's answer is 1000 tokens.
TASK_MAX_TOKENS = 128


def open_webui(name: str) -> Obj:
    found = [
        c
        for _, pod in pod_specs(name)
        for c in pod["spec"]["containers"]
        if c["name"] == "open-webui"
    ]
    assert len(found) == 1, f"{name}: expected one open-webui container, found {len(found)}"
    return found[0]


def env(container: Obj) -> dict[str, str]:
    """Plain values only: a key taken from a Secret maps to '<secret>'."""
    return {e["name"]: e.get("value", "<secret>") for e in container.get("env", [])}


@pytest.mark.parametrize("name", BUILDS)
def test_background_tasks_are_set_on_purpose(name: str) -> None:
    values = env(open_webui(name))
    assert {key: values.get(key) for key in BACKGROUND_TASKS} == BACKGROUND_TASKS


@pytest.mark.parametrize("name", BUILDS)
def test_every_task_answer_is_bounded(name: str) -> None:
    raw = env(open_webui(name)).get("TASK_MODEL_PARAMS")
    assert raw is not None, "TASK_MODEL_PARAMS unset: a title may run to 1000 tokens"
    # The task model stays the chat's own: a TASK_MODEL would be a second model to load.
    assert "TASK_MODEL" not in env(open_webui(name))
    assert json.loads(raw) == {"max_tokens": TASK_MAX_TOKENS}


@pytest.mark.parametrize("name", BUILDS)
def test_no_total_timeout_caps_a_call_to_ollama(name: str) -> None:
    values = env(open_webui(name))
    # 0.12.x env.py: empty or unset is no total timeout; a number caps the whole call,
    # queue wait and stream included; anything else is 300 s.
    assert values.get("AIOHTTP_CLIENT_TIMEOUT", "") == ""
    # A cap between chunks would count the silent wait in the queue as well.
    assert "AIOHTTP_CLIENT_STREAM_IDLE_TIMEOUT" not in values


@pytest.mark.parametrize("name", BUILDS)
def test_every_open_webui_image_is_the_pinned_version(name: str) -> None:
    images = {
        c["image"]
        for _, pod in pod_specs(name)
        for c in containers(pod)
        if c["image"].rsplit(":", 1)[0] == IMAGE
    }
    assert images == {f"{IMAGE}:{VERSION}"}
