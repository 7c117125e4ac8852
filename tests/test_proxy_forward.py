"""Reading Ollama's final statistics from the tail of an answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scaler.proxy.forward import final_stats

FINAL = {"model": "llama3.2", "done": True, "eval_count": 200, "prompt_eval_count": 26}
TOKEN = {"model": "llama3.2", "message": {"content": " word"}, "done": False}


def _ndjson(*chunks: dict[str, Any], end: bytes = b"\n") -> bytes:
    return b"".join(json.dumps(chunk).encode() + end for chunk in chunks)


@pytest.mark.parametrize(
    ("tail", "stats"),
    [
        pytest.param(_ndjson(TOKEN, TOKEN, FINAL), FINAL, id="ndjson"),
        pytest.param(_ndjson(TOKEN, FINAL, end=b"\r\n"), FINAL, id="crlf"),
        pytest.param(_ndjson(TOKEN, FINAL) + b"\n\n  \n", FINAL, id="blank-lines-after"),
        pytest.param(json.dumps(FINAL).encode(), FINAL, id="plain-json-no-newline"),
        pytest.param(_ndjson(FINAL, TOKEN), None, id="last-not-done"),
        pytest.param(b'data: {"id": 1}\n\ndata: [DONE]\n\n', None, id="sse"),
        pytest.param(_ndjson(TOKEN) + b'{"done": tr', None, id="cut-mid-line"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"\n\n", None, id="only-newlines"),
        pytest.param(b"[1, 2]\n", None, id="not-an-object"),
    ],
)
def test_the_final_chunk_is_the_last_nonblank_line(tail: bytes, stats: object) -> None:
    assert final_stats(tail) == stats
    assert final_stats(bytearray(tail)) == stats  # as the relay keeps it


def _last_line_by_splitting(tail: bytes) -> dict[str, Any] | None:
    """The obvious reading: split every line, take the last nonblank one."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        chunk = json.loads(lines[-1])
    except ValueError:
        return None
    return chunk if isinstance(chunk, dict) and chunk.get("done") is True else None


@given(
    st.lists(st.sampled_from([TOKEN, FINAL, {"done": True}, "x", ""]), max_size=8),
    st.sampled_from([b"\n", b"\r\n"]),
    st.sampled_from([b"", b"\n", b"\r\n\r\n", b"  "]),
)
def test_reading_from_the_end_agrees_with_splitting_every_line(
    lines: list[object], newline: bytes, trailer: bytes
) -> None:
    tail = newline.join(
        line.encode() if isinstance(line, str) else json.dumps(line).encode() for line in lines
    )
    tail += trailer
    assert final_stats(tail) == _last_line_by_splitting(tail)
