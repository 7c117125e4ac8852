"""What an Ollama keeps on its models volume: installed models and blobs.

One ``ModelStore`` per fake by default. In the cluster every serving pod and the
models' writer mount the same volume, so a model the writer pulled or created is
listed and usable on every pod, and one it deleted is gone everywhere; to test that,
hand one store to several fakes:

    store = ModelStore()
    with running_fake_ollama(store=store) as writer, running_fake_ollama(store=store) as pod:
        ollama.Client(writer.url).pull("qwen2")      # pod lists it and answers with it

Thread-safe: each fake serves from its own thread. What is loaded in memory is not
here but on each fake (``FakeOllama.loaded``), as a model loaded by one Ollama is not
loaded by the others; a model deleted from the volume stays loaded where it was, and
new requests for it get 404, as Ollama's manifest lookup fails (``GetModel``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from tests.support.fake_ollama_shapes import full_name


class ModelStore:
    """Installed models (full name → modified time, epoch seconds) and blobs (digest →
    bytes), as on Ollama's ``models/manifests`` and ``models/blobs``."""

    def __init__(self, models: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._models = {full_name(m): time.time() for m in models}
        self._blobs: dict[str, bytes] = {}

    def installed(self) -> dict[str, float]:
        """Installed model names → modified time (epoch seconds)."""
        with self._lock:
            return dict(self._models)

    def install(self, model: str) -> None:
        """Add ``model`` (a model already there keeps its modified time)."""
        with self._lock:
            self._models.setdefault(full_name(model), time.time())

    def remove(self, model: str) -> bool:
        """Delete ``model``; false if it was not installed."""
        with self._lock:
            return self._models.pop(full_name(model), None) is not None

    def has_blob(self, digest: str) -> bool:
        """``digest`` as Ollama names the file: ``sha256:HEX`` and ``sha256-HEX`` are
        the same blob (``manifest.BlobsPath`` turns ``:`` into ``-``)."""
        with self._lock:
            return _file_name(digest) in self._blobs

    def add_blob(self, digest: str, data: bytes) -> None:
        with self._lock:
            self._blobs[_file_name(digest)] = data

    def blob(self, digest: str) -> bytes | None:
        with self._lock:
            return self._blobs.get(_file_name(digest))


def _file_name(digest: str) -> str:
    return digest.replace(":", "-", 1)
