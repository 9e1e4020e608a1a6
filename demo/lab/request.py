"""Reading a chat-completions request body, and refusing bad ones as OpenAI does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from demo.lab.profiles import PACE_CHECKS, Check

LAB_FIELD = "lab"
"""The extra body field with per-request overrides of the profile (for benchmarks and tests)."""

MAX_OUTPUT_TOKENS = 1_000_000
"""Upper bound on `output_tokens`, so one request cannot exhaust the server's memory."""


def _is_int(low: int, high: int) -> Check:
    def check(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    return check, f"a whole number from {low} to {high}"


_OVERRIDE_CHECKS: dict[str, Check] = {
    **PACE_CHECKS,
    "output_tokens": _is_int(1, MAX_OUTPUT_TOKENS),
    "seed": _is_int(-(2**63), 2**63 - 1),
}
_MAX_TOKENS_CHECK = _is_int(1, 2**31 - 1)


class RequestError(Exception):
    """A request the server refuses, with the parts of OpenAI's error object."""

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """The parts of a chat-completions request the lab server acts on."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    """Validated `lab` fields: pace keys of the profile, `output_tokens`, `seed`."""


def parse_request(body: bytes) -> CompletionRequest:
    """Validate a request body.

    Raises:
        RequestError: the body is not JSON, or a field OpenAI requires is missing or malformed.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)"
        ) from exc
    if not isinstance(data, dict):
        raise RequestError("The request body must be a JSON object.")

    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", param="model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(
                f"Invalid value for 'messages[{index}]': expected an object with a 'role'.",
                param=f"messages[{index}]",
                code="invalid_value",
            )

    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RequestError("Invalid type for 'stream': expected a boolean.", param="stream")
    include_usage = _include_usage(data.get("stream_options"), stream)
    return CompletionRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        max_tokens=_max_tokens(data),
        overrides=_overrides(data.get(LAB_FIELD)),
    )


def _include_usage(options: object, stream: bool) -> bool:
    if options is None:
        return False
    if not stream:
        raise RequestError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    if not isinstance(options, dict):
        raise RequestError(
            "Invalid type for 'stream_options': expected an object.", param="stream_options"
        )
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise RequestError(
            "Invalid type for 'stream_options.include_usage': expected a boolean.",
            param="stream_options.include_usage",
        )
    return include


def _max_tokens(data: Mapping[str, object]) -> int | None:
    limits: list[int] = []
    check, expected = _MAX_TOKENS_CHECK
    for key in ("max_tokens", "max_completion_tokens"):
        value = data.get(key)
        if value is None:
            continue
        if not check(value):
            raise RequestError(
                f"Invalid '{key}': must be {expected}.", param=key, code="invalid_value"
            )
        assert isinstance(value, int)
        limits.append(value)
    return min(limits) if limits else None


def _overrides(lab: object) -> dict[str, Any]:
    if lab is None:
        return {}
    if not isinstance(lab, dict):
        raise RequestError(f"Invalid type for '{LAB_FIELD}': expected an object.", param=LAB_FIELD)
    unknown = sorted(set(lab) - set(_OVERRIDE_CHECKS))
    if unknown:
        raise RequestError(
            f"Unknown field(s) in '{LAB_FIELD}': {', '.join(unknown)} "
            f"(known: {', '.join(_OVERRIDE_CHECKS)}).",
            param=f"{LAB_FIELD}.{unknown[0]}",
            code="unknown_parameter",
        )
    for key, value in lab.items():
        check, expected = _OVERRIDE_CHECKS[key]
        if not check(value):
            raise RequestError(
                f"Invalid '{LAB_FIELD}.{key}': must be {expected} (got {value!r:.60}).",
                param=f"{LAB_FIELD}.{key}",
                code="invalid_value",
            )
    return dict(lab)
