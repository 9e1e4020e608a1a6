"""OpenAI's chat-completions wire format, byte for byte as providers stream it.

The parts of a chunk that never change within a reply are encoded once, so a content chunk costs
one `json.dumps` of its text: the server has to keep up with tens of thousands of tokens a second.
"""

from __future__ import annotations

import json
from typing import Any

DONE = b"data: [DONE]\n\n"
"""The event that ends every stream."""

_COMPACT = (",", ":")


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=_COMPACT)


def usage_body(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """OpenAI's `usage` object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class ChunkWriter:
    """The SSE events of one streamed completion."""

    def __init__(
        self,
        *,
        completion_id: str,
        created: int,
        model: str,
        fingerprint: str,
        include_usage: bool,
    ) -> None:
        head = _dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": fingerprint,
            }
        )
        self._head = "data: " + head[:-1] + ',"choices":'
        # OpenAI puts `"usage": null` on every chunk but the last once usage was asked for.
        self._tail = (',"usage":null}' if include_usage else "}") + "\n\n"
        self._content_head = (self._head + '[{"index":0,"delta":{"content":').encode()
        self._content_tail = ('},"logprobs":null,"finish_reason":null}]' + self._tail).encode()

    def _choice(self, delta: dict[str, str], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return (self._head + _dumps([choice]) + self._tail).encode()

    def role(self) -> bytes:
        """The first event: the assistant role and an empty content string."""
        return self._choice({"role": "assistant", "content": ""}, None)

    def content(self, text: str) -> bytes:
        """An event carrying a piece of the reply."""
        return self._content_head + _dumps(text).encode() + self._content_tail

    def finish(self, reason: str) -> bytes:
        """The event with an empty delta that says why the reply ended."""
        return self._choice({}, reason)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        """The last event before `[DONE]` when usage was asked for: no choices, only counts."""
        body = self._head + '[],"usage":' + _dumps(usage_body(prompt_tokens, completion_tokens))
        return (body + "}\n\n").encode()


def completion_body(
    *,
    completion_id: str,
    created: int,
    model: str,
    fingerprint: str,
    text: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> bytes:
    """A whole `chat.completion` object, as sent when `stream` is false."""
    return _dumps(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage_body(prompt_tokens, completion_tokens),
            "system_fingerprint": fingerprint,
        }
    ).encode()


def error_body(
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    type: str = "invalid_request_error",
) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
