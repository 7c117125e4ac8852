"""The fake Ollama's token bounds and its newer inference routes (issue 17):

- ``options.num_predict`` and OpenAI's ``max_tokens`` cut an answer with ``length``
  only when the bound is under the answer's own length; ``max_completion_tokens`` is
  ignored, as Ollama ignores it (``fake_ollama_openai``);
- ``/v1/messages`` speaks Anthropic's Messages API (``fake_ollama_anthropic``);
- ``/v1/images/*`` and ``/v1/audio/transcriptions`` answer and take a slot
  (``fake_ollama_media``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from tests.support.fake_ollama import RunningFakeOllama, answer_text, running_fake_ollama

MODEL = "llama3.2"
HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake() -> Iterator[RunningFakeOllama]:
    with running_fake_ollama(tokens=5) as server:
        yield server


@pytest.fixture
def http(fake: RunningFakeOllama) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url) as client:
        yield client


@pytest.mark.parametrize(
    ("num_predict", "tokens", "reason"),
    [
        pytest.param(3, 3, "length", id="under-the-answer"),
        pytest.param(5, 5, "length", id="at-the-answer"),
        pytest.param(50, 5, "stop", id="past-the-answer"),
        pytest.param(-1, 5, "stop", id="no-limit"),
    ],
)
def test_num_predict_bounds_the_native_answers(
    fake: RunningFakeOllama, num_predict: int, tokens: int, reason: str
) -> None:
    options = {"num_predict": num_predict}
    with ollama.Client(host=fake.url) as client:
        chat = client.chat(model=MODEL, messages=HELLO, options=options)
        generated = client.generate(model=MODEL, prompt="hi", options=options)
    assert (chat.eval_count, chat.done_reason) == (tokens, reason)
    assert (generated.eval_count, generated.done_reason) == (tokens, reason)
    assert chat.message.content == generated.response == answer_text(tokens)


def test_openai_max_tokens_bounds_the_answer_and_max_completion_tokens_does_not(
    http: httpx.Client,
) -> None:
    def ask(path: str, **bound: int) -> dict[str, Any]:
        body = {"model": MODEL, "messages": HELLO, "prompt": "hi", **bound}
        answer = http.post(path, json=body).json()
        return {"reason": answer["choices"][0]["finish_reason"], **answer["usage"]}

    for path in ("/v1/chat/completions", "/v1/completions"):
        assert ask(path, max_tokens=2)["reason"] == "length"
        assert ask(path, max_tokens=2)["completion_tokens"] == 2
        assert ask(path, max_tokens=9)["reason"] == "stop"
    ignored = ask("/v1/chat/completions", max_completion_tokens=2)
    assert (ignored["reason"], ignored["completion_tokens"]) == ("stop", 5)


def test_anthropic_messages_answer_whole_or_as_events(
    fake: RunningFakeOllama, http: httpx.Client
) -> None:
    body = {"model": MODEL, "max_tokens": 3, "messages": HELLO}
    whole = http.post("/v1/messages", json=body).json()
    assert whole["type"] == "message" and whole["id"].startswith("msg_")
    assert whole["content"] == [{"type": "text", "text": answer_text(3)}]
    assert whole["stop_reason"] == "max_tokens"  # the bound cut the 5-token answer
    assert whole["usage"] == {"input_tokens": 1, "output_tokens": 3}
    streamed = http.post("/v1/messages", json=body | {"max_tokens": 10, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [block.split("\n") for block in streamed.text.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in events]
    data = [json.loads(lines[1].removeprefix("data: ")) for lines in events]
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [d["type"] for d in data] == names
    assert "".join(d["delta"]["text"] for d in data[2:7]) == answer_text(5)
    assert data[-2]["delta"] == {"stop_reason": "end_turn"}
    assert fake.stats().served == 2


@pytest.mark.parametrize(
    ("change", "status", "kind", "message"),
    [
        pytest.param(
            {"max_tokens": None}, 400, "invalid_request_error", "max_tokens is", id="no-max"
        ),
        pytest.param(
            {"messages": []}, 400, "invalid_request_error", "messages is", id="no-messages"
        ),
        pytest.param(
            {"model": "absent"}, 404, "not_found_error", "model 'absent'", id="unknown-model"
        ),
    ],
)
def test_anthropic_errors_have_anthropics_shape(
    http: httpx.Client, change: dict[str, Any], status: int, kind: str, message: str
) -> None:
    body = {"model": MODEL, "max_tokens": 3, "messages": HELLO} | change
    answer = http.post("/v1/messages", json=body)
    assert answer.status_code == status
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == kind
    assert error["error"]["message"].startswith(message)


def test_images_and_transcriptions_answer_and_take_a_slot(
    fake: RunningFakeOllama, http: httpx.Client
) -> None:
    image = {"model": MODEL, "prompt": "a cat", "n": 2}
    made = http.post("/v1/images/generations", json=image).json()
    assert len(made["data"]) == 2 and made["data"][0]["b64_json"]
    edited = http.post("/v1/images/edits", json=image | {"image": made["data"][0]["b64_json"]})
    assert edited.status_code == 200
    no_image = http.post("/v1/images/edits", json=image)
    assert (no_image.status_code, no_image.json()["error"]["message"]) == (400, "image is required")
    audio = {"file": ("hello.wav", b"RIFF\x00\xff fake audio", "audio/wav")}
    heard = http.post("/v1/audio/transcriptions", data={"model": MODEL}, files=audio)
    assert heard.json() == {"text": answer_text(5)}
    as_text = {"model": MODEL, "response_format": "text"}
    assert http.post("/v1/audio/transcriptions", data=as_text, files=audio).text == answer_text(5)
    no_file = {"note": ("note.txt", b"x", "text/plain")}
    deaf = http.post("/v1/audio/transcriptions", data={"model": MODEL}, files=no_file)
    assert deaf.status_code == 400
    assert deaf.json()["error"]["message"].startswith("file is required")
    assert fake.stats().served == 4
