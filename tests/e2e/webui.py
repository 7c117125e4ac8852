"""Open WebUI 0.12's HTTP API, called as its browser front end calls it.

Two ways to chat: ``stream_chat`` is the API client's way (``POST
/api/chat/completions`` answered with Server-Sent Events on the same connection);
``start_chat`` is the browser's way (a new chat with a socket session: Open WebUI
answers ``{task_ids, chat_id}`` at once, runs the answer and the background tasks
(title, tags, follow-ups) as its own asyncio task, saves the answer in the chat, and
the Stop button cancels that task: ``stop``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

PASSWORD = "e2e-password-1234"
CHAT_DONE_TIMEOUT = 30.0


class WebUIError(AssertionError):
    """Open WebUI answered something a user would see as a failure."""


@dataclass(frozen=True)
class Answer:
    """What the user sees of one streamed chat: the text, or the error shown instead."""

    status: int
    content: str
    error: str | None


@dataclass(frozen=True)
class Started:
    chat_id: str
    task_id: str
    message_id: str


class WebUI:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url
        self.headers: dict[str, str] = {}

    async def sign_up_admin(self) -> str:
        """The first account on a new install becomes the admin (Open WebUI's rule)."""
        body = {"name": "Admin", "email": "admin@example.com", "password": PASSWORD}
        reply = await self._json("POST", "/api/v1/auths/signup", json=body)
        self.headers = {"Authorization": f"Bearer {reply['token']}"}
        return str(reply["role"])

    async def model_ids(self) -> list[str]:
        """The model picker's list, refreshed (as after the admin's model changes;
        Open WebUI otherwise keeps the list it read last)."""
        reply = await self._json("GET", "/api/models?refresh=true")
        return sorted(m["id"] for m in reply["data"])

    async def stream_chat(self, model: str, text: str, **extra: Any) -> Answer:
        """One streamed chat read to the end, as an API client of Open WebUI reads it."""
        body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": True}
        async with self.http.post(
            self.url + "/api/chat/completions", json={**body, **extra}, headers=self.headers
        ) as reply:
            if reply.content_type != "text/event-stream":
                return Answer(reply.status, "", _detail(await reply.text()))
            content, error = [], None
            async for line in reply.content:
                data = line.decode().strip().removeprefix("data:").strip()
                if not data or data == "[DONE]":
                    continue
                event = json.loads(data)
                if "error" in event:
                    error = _detail(json.dumps(event["error"]))
                for choice in event.get("choices", []):
                    content.append(choice.get("delta", {}).get("content") or "")
            return Answer(reply.status, "".join(content), error)

    async def start_chat(self, model: str, text: str) -> Started:
        """A new chat as the browser starts it, asking for every background task (the
        browser asks; Open WebUI runs those its settings enable)."""
        user_id, answer_id = str(uuid.uuid4()), str(uuid.uuid4())
        body = {
            "model": model,
            "messages": [{"role": "user", "content": text, "id": user_id}],
            "parent_id": None,
            "id": answer_id,
            "session_id": f"session-{uuid.uuid4()}",
            "user_message": {
                "id": user_id,
                "role": "user",
                "content": text,
                "parentId": None,
                "childrenIds": [answer_id],
                "models": [model],
            },
            "background_tasks": {
                "title_generation": True,
                "tags_generation": True,
                "follow_up_generation": True,
            },
            "stream": True,
        }
        reply = await self._json("POST", "/api/chat/completions", json=body)
        return Started(str(reply["chat_id"]), str(reply["task_ids"][0]), answer_id)

    async def saved_answer(self, started: Started) -> dict[str, Any]:
        """The answer as saved in the chat, once Open WebUI marks it done."""
        deadline = time.monotonic() + CHAT_DONE_TIMEOUT
        while time.monotonic() < deadline:
            chat = await self._json("GET", f"/api/v1/chats/{started.chat_id}")
            message = chat["chat"]["history"]["messages"].get(started.message_id, {})
            if message.get("done"):
                return dict(message)
            await asyncio.sleep(0.1)
        raise WebUIError(f"chat {started.chat_id} not done after {CHAT_DONE_TIMEOUT} s")

    async def stop(self, started: Started) -> None:
        """The Stop button: every task of the chat (``/api/tasks/chat/ID/stop``)."""
        await self._json("POST", f"/api/tasks/chat/{started.chat_id}/stop")

    async def tasks(self) -> list[str]:
        return list((await self._json("GET", "/api/tasks"))["tasks"])

    async def pull(self, model: str) -> list[dict[str, Any]]:
        async with self.http.post(
            self.url + "/ollama/api/pull", json={"model": model}, headers=self.headers
        ) as reply:
            text = await reply.text()
            if reply.status != 200:
                raise WebUIError(f"pull {model}: {reply.status} {text}")
            return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def upload_gguf(self, filename: str, data: bytes) -> list[dict[str, Any]]:
        """Admin > Models > upload a GGUF file: Open WebUI streams its progress as SSE."""
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type="application/octet-stream")
        async with self.http.post(
            self.url + "/ollama/models/upload", data=form, headers=self.headers
        ) as reply:
            text = await reply.text()
            if reply.status != 200:
                raise WebUIError(f"upload {filename}: {reply.status} {text}")
            lines = [line.removeprefix("data:").strip() for line in text.splitlines()]
            return [json.loads(line) for line in lines if line]

    async def delete(self, model: str) -> None:
        await self._json("DELETE", "/ollama/api/delete", json={"model": model})

    async def unload(self, model: str) -> None:
        """Admin's "Unload" of a model (``/api/generate`` with ``keep_alive: 0``)."""
        await self._json("POST", "/ollama/api/unload", json={"model": model})

    async def anthropic_message(self, model: str, text: str, max_tokens: int) -> dict[str, Any]:
        """Open WebUI's pass-through to Ollama's Anthropic Messages API."""
        body = {
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": text}],
        }
        return dict(await self._json("POST", "/ollama/v1/messages", json=body))

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(
            method, self.url + path, headers=self.headers, **kwargs
        ) as reply:
            text = await reply.text()
            if reply.status != 200:
                raise WebUIError(f"{method} {path}: {reply.status} {text}")
            return json.loads(text)


def _detail(text: str) -> str:
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict):
        return str(parsed.get("detail") or parsed.get("error") or parsed.get("message") or parsed)
    return text
