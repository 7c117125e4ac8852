"""The fake Ollama's models volume: blobs checked by digest, ``/api/create`` from blobs
(Open WebUI's GGUF upload), and one ``ModelStore`` shared by several fakes as the pods
and the writer share the volume (issue 17). The expected texts are Ollama's own
(``server/routes.go``, ``server/create.go``; see ``fake_ollama_blobs``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from tests.support.fake_ollama import ModelStore, RunningFakeOllama, running_fake_ollama

MODEL = "llama3.2"
HELLO = [{"role": "user", "content": "hi"}]
WEIGHTS = b"GGUF\x03\x00\x00\x00 tiny fake weights"
DIGEST = "sha256:" + hashlib.sha256(WEIGHTS).hexdigest()
ABSENT = "sha256:" + "0" * 64


@pytest.fixture
def fake() -> Iterator[RunningFakeOllama]:
    with running_fake_ollama() as server:
        yield server


def _upload(url: str, tmp_path: Path, data: bytes = WEIGHTS) -> str:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(data)
    with ollama.Client(host=url) as client:
        return client.create_blob(path)


def test_a_blob_is_kept_only_under_its_own_sha256(fake: RunningFakeOllama, tmp_path: Path) -> None:
    assert _upload(fake.url, tmp_path) == DIGEST  # the official client's upload: 201
    with httpx.Client(base_url=fake.url) as http:
        assert http.head(f"/api/blobs/{DIGEST}").status_code == 200
        assert http.head(f"/api/blobs/{ABSENT}").status_code == 404
        wrong = http.post(f"/api/blobs/{ABSENT}", content=WEIGHTS)
        assert wrong.status_code == 400
        assert wrong.json() == {"error": f'digest mismatch, expected "{ABSENT}", got "{DIGEST}"'}
        assert http.head(f"/api/blobs/{ABSENT}").status_code == 404
        again = http.post(f"/api/blobs/{DIGEST}", content=b"not read: the blob is there")
        assert again.status_code == 200
        for bad in ("sha256:abc", "md5:" + "0" * 64, DIGEST + "0"):
            assert http.head(f"/api/blobs/{bad}").status_code == 400
            refused = http.post(f"/api/blobs/{bad}", content=WEIGHTS)
            assert (refused.status_code, refused.json()) == (
                400,
                {"error": "invalid digest format"},
            )
    assert fake.store.blob(DIGEST) == WEIGHTS


def test_create_from_a_missing_gguf_blob_fails_as_ollama_does(fake: RunningFakeOllama) -> None:
    with ollama.Client(host=fake.url) as client:
        # Open WebUI sends stream: false: the error comes as HTTP 500 (waitForStream)
        with pytest.raises(ollama.ResponseError) as whole:
            client.create(model="tiny", files={"tiny.gguf": ABSENT}, stream=False)
        assert whole.value.status_code == 500
        path = f"/root/.ollama/models/blobs/sha256-{'0' * 64}"
        assert whole.value.error == f"open {path}: no such file or directory"
        # a name that does not say .gguf is opened before anything is written: 400
        with pytest.raises(ollama.ResponseError) as sniffed:
            client.create(model="tiny", files={"tiny": ABSENT}, stream=False)
        assert sniffed.value.status_code == 400
        assert sniffed.value.error.startswith(f"blob not found for tiny (digest {ABSENT}): open ")
        assert "tiny:latest" not in {m.model for m in client.list().models}
    with httpx.Client(base_url=fake.url) as http:
        streamed = http.post("/api/create", json={"model": "tiny", "files": {"t.gguf": ABSENT}})
        lines = [json.loads(line) for line in streamed.text.splitlines()]
        assert streamed.status_code == 200
        assert lines == [{"status": "parsing GGUF"}, {"error": whole.value.error}]
        bad = http.post("/api/create", json={"model": "tiny", "files": {"t.gguf": "sha256:1"}})
        assert bad.status_code == 400
        assert bad.json() == {"error": "invalid digest for t.gguf: invalid digest format"}
        neither = http.post("/api/create", json={"model": "tiny"})
        assert neither.json() == {"error": "neither 'from' or 'files' was specified"}


def test_a_model_created_from_an_uploaded_blob_is_listed_and_answers(
    fake: RunningFakeOllama, tmp_path: Path
) -> None:
    digest = _upload(fake.url, tmp_path)
    with ollama.Client(host=fake.url) as client:
        progress = list(client.create(model="tiny", files={"tiny.gguf": digest}, stream=True))
        assert [p.status for p in progress] == [
            "parsing GGUF",
            f"using existing layer {digest}",
            "writing manifest",
            "success",
        ]
        assert "tiny:latest" in {m.model for m in client.list().models}
        assert client.chat(model="tiny", messages=HELLO).done


def test_fakes_sharing_a_store_see_one_models_volume(tmp_path: Path) -> None:
    store = ModelStore()
    with (
        running_fake_ollama(store=store, models=()) as writer,
        running_fake_ollama(store=store, models=(MODEL,)) as pod,
        running_fake_ollama(models=()) as apart,  # its own volume, as by default
        ollama.Client(host=writer.url) as at_writer,
        ollama.Client(host=pod.url) as at_pod,
    ):
        assert {m.model for m in at_writer.list().models} == {"llama3.2:latest"}
        at_writer.pull("qwen2")
        digest = _upload(pod.url, tmp_path)  # the blob lands on the shared volume
        at_writer.create(model="tiny", files={"tiny.gguf": digest})
        assert {m.model for m in at_pod.list().models} >= {"qwen2:latest", "tiny:latest"}
        assert at_pod.chat(model="tiny", messages=HELLO).done
        at_writer.delete("tiny")
        assert "tiny:latest" not in {m.model for m in at_pod.list().models}
        with pytest.raises(ollama.ResponseError) as gone:
            at_pod.chat(model="tiny", messages=HELLO)
        assert gone.value.status_code == 404
        assert apart.installed() == {}
        assert not apart.store.has_blob(digest)
