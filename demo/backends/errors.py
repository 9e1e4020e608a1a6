"""Turning HTTP and network failures into one clear line, with no secret in it."""

from __future__ import annotations

import json
import os
import re
import socket
from email.utils import parsedate_to_datetime
from html import unescape

import httpx

from demo.core.events import ErrorKind

_STATUS_KINDS: dict[int, ErrorKind] = {
    401: "auth",
    403: "auth",
    404: "not_found",
    429: "rate_limit",
}

_KEYISH = re.compile(r"\b(?:sk|gsk|csk|pk|xai|fw|or)[-_][A-Za-z0-9*._-]{4,}")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def one_line(text: str, limit: int = 240) -> str:
    """Collapse whitespace and control characters and cut to a readable length."""
    text = _SPACE.sub(" ", "".join(c if c.isprintable() else " " for c in text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove anything that is, or looks like, an API key (providers echo partial keys)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEYISH.sub("***", text)


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            # The asctime form carries no zone; every HTTP date is in UTC.
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def body_message(body: bytes, content_type: str) -> str:
    """The human part of an error body: a JSON `error.message`, an HTML title, or plain text."""
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type or text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError:
            pass
        else:
            return provider_error_message(data) or one_line(text)
    if "html" in content_type or text.lstrip().lower().startswith(("<!doctype", "<html")):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        if title:
            return one_line(unescape(title.group(1)))
        return one_line(unescape(_TAG.sub(" ", text)))
    return one_line(text)


def provider_error_message(data: object) -> str:
    """The message of an OpenAI-style error object, whatever shape the provider chose."""
    if isinstance(data, list):
        # Some providers wrap the error object in a list (Gemini's OpenAI-compatible API).
        return provider_error_message(data[0]) if data else ""
    if isinstance(data, dict):
        # "msg" is a validation error item's message (FastAPI/pydantic `detail` lists).
        error = data.get("error", data.get("detail", data.get("message", data.get("msg"))))
        if isinstance(error, dict):
            message = error.get("message") or error.get("msg") or error.get("type")
            if message:
                return one_line(str(message))
            return one_line(json.dumps(error))
        if isinstance(error, str):
            return one_line(error)
        if isinstance(error, list) and error:
            return provider_error_message(error[0]) or one_line(json.dumps(error[0]))
    return ""


def status_error(
    status: int,
    reason: str,
    body: bytes,
    content_type: str,
    retry_after: str | None,
    api_key_env: str | None,
) -> tuple[ErrorKind, str, float | None]:
    """Kind, one-line message and Retry-After for an HTTP error response."""
    kind: ErrorKind = _STATUS_KINDS.get(status, "server" if status >= 500 else "http")
    detail = body_message(body, content_type)
    message = f"HTTP {status} {reason}".rstrip()
    if detail and detail.lower() not in message.lower():
        message += f": {detail}"
    wait = retry_after_seconds(retry_after)
    if status == 429:
        message += f" (retry after {wait:g} s)" if wait is not None else " (rate limited)"
    elif status in (401, 403) and api_key_env:
        message += f" — check {api_key_env}"
    return kind, one_line(message), wait


def transport_error(exc: Exception, started: bool, base_url: str) -> tuple[ErrorKind, str]:
    """Kind and one-line message for a network-level failure."""
    text = str(exc) or type(exc).__name__
    host = httpx.URL(base_url).host if base_url else "server"
    if isinstance(exc, httpx.ConnectTimeout):
        return "timeout", f"timed out connecting to {host}"
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        if started:
            return "stall", f"the stream from {host} stalled (no data within the stall timeout)"
        return "timeout", f"no response from {host} within the first-byte timeout"
    if isinstance(exc, httpx.ConnectError):
        lowered = text.lower()
        # The OS error that says what happened sits further down the chain: for a refused
        # connection httpx reports only "All connection attempts failed".
        causes = _causes(exc)
        if any(isinstance(c, socket.gaierror) for c in causes) or any(
            s in lowered
            for s in ("name or service", "nodename", "name resolution", "getaddrinfo", "no address")
        ):
            return "dns", f"cannot resolve host {host} (DNS lookup failed)"
        if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in lowered:
            return "connect", f"connection refused by {host} — is the server running?"
        codes = [c.errno for c in causes if isinstance(c, OSError) and c.errno]
        if codes:
            text = os.strerror(codes[0])
        return "connect", f"cannot connect to {host}: {one_line(text, 120)}"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        if started:
            return "reset", f"connection to {host} was reset mid-stream"
        return "reset", f"connection to {host} closed before a response: {one_line(text, 120)}"
    return "http", f"{type(exc).__name__} talking to {host}: {one_line(text, 120)}"


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and the ones it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
