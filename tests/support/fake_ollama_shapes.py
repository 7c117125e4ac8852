"""Pure helpers for the fake Ollama: answer tokens, names, timestamps, model metadata.

No state and no I/O; ``fake_ollama_core`` holds the state.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_KEEP_ALIVE = 300.0
"""Seconds a model stays loaded after its last request (``OLLAMA_KEEP_ALIVE`` = 5m)."""
WORDS = ("The", " sky", " is", " blue", " because", " of", " Rayleigh", " scattering", ".")
"""Token texts, cycled; each new sentence after the first starts with a space."""


def answer_tokens(count: int) -> list[str]:
    """The tokens the fake streams for an answer of ``count`` tokens."""
    n = len(WORDS)
    return [(" " if i and i % n == 0 else "") + WORDS[i % n] for i in range(count)]


def answer_text(count: int) -> str:
    """The full text of an answer of ``count`` tokens."""
    return "".join(answer_tokens(count))


def now_rfc3339(offset_seconds: float = 0.0) -> str:
    """Go's RFC 3339 timestamp with sub-second digits, as in ``created_at``."""
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def full_name(model: str) -> str:
    """``llama3.2`` → ``llama3.2:latest``: Ollama's default tag."""
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


def digest_of(model: str) -> str:
    return hashlib.sha256(full_name(model).encode()).hexdigest()


def parse_keep_alive(value: Any) -> float | None:
    """Seconds to stay loaded; ``None`` = forever. Numbers are seconds; strings are Go
    durations (``5m``, ``1h30m``, ``-1``). Anything unparsable means the default."""
    if value is None:
        return DEFAULT_KEEP_ALIVE
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = re.findall(r"(-?\d+(?:\.\d+)?)(ms|s|m|h)", text)
            if not parts:
                return DEFAULT_KEEP_ALIVE
            scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
            seconds = sum(float(n) * scale[unit] for n, unit in parts)
    return None if seconds < 0 else seconds


def model_details(name: str) -> dict[str, Any]:
    family = "bert" if "minilm" in name or "embed" in name else "llama"
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "23M" if family == "bert" else "3.2B",
        "quantization_level": "F16" if family == "bert" else "Q4_K_M",
    }


def model_size(name: str) -> int:
    return 45_960_996 if model_details(name)["family"] == "bert" else 2_019_393_189


def timestamp_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
