"""An OpenAI-compatible chat-completions endpoint on loopback, for agno's ``OpenAIChat`` in tests.

It answers ``POST /v1/chat/completions`` as OpenAI does, as one JSON completion or, when the
request has ``"stream": true``, as server-sent chunks ending in ``data: [DONE]`` (with a usage
chunk when ``stream_options.include_usage`` asks for one). Each request body it received is kept,
in order, so a test can see the prompt the model was given.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

# Token counts of every answer, so that the metrics agno stores are known in advance.
USAGE = {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}
CREATED = 1_750_000_000


class ChatStub(NamedTuple):
    """A running stub: the base URL to give ``OpenAIChat`` and the request bodies it received."""

    base_url: str
    requests: list[dict]


def completion(completion_id: str, model: str, text: str) -> dict:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": USAGE,
    }


def completion_chunks(completion_id: str, model: str, text: str, *, with_usage: bool) -> list[dict]:
    """``text`` as OpenAI streams it: the role, one chunk per word, the finish reason, the usage."""

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    words = text.split(" ")
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": word if i == 0 else f" {word}"}) for i, word in enumerate(words)]
    chunks.append(chunk({}, "stop"))
    if with_usage:
        chunks.append({**chunk({}), "choices": [], "usage": USAGE})
    return chunks


@contextmanager
def chat_completions_stub(answer: Callable[[list[dict]], str]) -> Iterator[ChatStub]:
    """Serve the stub on a free loopback port; ``answer`` gives the reply to a request's messages."""
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/v1/chat/completions":
                self._send(404, "application/json", json.dumps({"error": {"message": "unknown path"}}).encode())
                return
            requests.append(body)
            completion_id = f"chatcmpl-stub-{len(requests)}"
            text = answer(body["messages"])
            if body.get("stream"):
                with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                chunks = completion_chunks(completion_id, body["model"], text, with_usage=with_usage)
                events = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
                self._send(200, "text/event-stream", events.encode())
            else:
                self._send(200, "application/json", json.dumps(completion(completion_id, body["model"], text)).encode())

        def _send(self, status: int, content_type: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args) -> None:  # the test's output stays quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="chat-completions-stub", daemon=True)
    thread.start()
    try:
        yield ChatStub(f"http://127.0.0.1:{server.server_address[1]}/v1", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
