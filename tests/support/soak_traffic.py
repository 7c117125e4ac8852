"""The mixed traffic of the soak tests: what Open WebUI sends, and clients that give up."""

from __future__ import annotations

import asyncio

import httpx

MODEL = "llama3.2"
KINDS = ["chat-stream"] * 5 + ["generate"] * 2 + ["openai-stream"] * 2 + ["tags"]
"""Request kinds, weighted by how often each is drawn."""


def request_for(kind: str) -> tuple[str, str, dict[str, object] | None]:
    """Method, path and JSON body of one request of ``kind``."""
    messages = [{"role": "user", "content": "hi"}]
    return {
        "chat-stream": ("POST", "/api/chat", {"model": MODEL, "messages": messages}),
        "generate": ("POST", "/api/generate", {"model": MODEL, "prompt": "x", "stream": False}),
        "openai-stream": (
            "POST",
            "/v1/chat/completions",
            {"model": MODEL, "messages": messages, "stream": True},
        ),
        "tags": ("GET", "/api/tags", None),
    }[kind]


async def send_one(
    http: httpx.AsyncClient, url: str, kind: str, give_up: float | None
) -> tuple[str, httpx.Headers | None]:
    """The outcome (status code, ``gave-up``, or the error's name) and the headers."""
    method, path, body = request_for(kind)
    headers: httpx.Headers | None = None

    async def call() -> str:
        nonlocal headers
        async with http.stream(method, url + path, json=body) as response:
            headers = response.headers
            async for _ in response.aiter_bytes():
                pass
            return str(response.status_code)

    try:
        if give_up is None:
            return await call(), headers
        return await asyncio.wait_for(call(), give_up), headers
    except TimeoutError:
        return "gave-up", headers
    except httpx.HTTPError as error:  # a stream Ollama broke off
        return type(error).__name__, headers
