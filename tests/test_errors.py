"""Turning error bodies, headers and network exceptions into one clear, secret-free line."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from demo.backends.errors import (
    body_message,
    one_line,
    redact,
    retry_after_seconds,
    status_error,
    transport_error,
)

# --- one_line --------------------------------------------------------------------------------


def test_one_line_collapses_whitespace_and_control_characters() -> None:
    assert one_line("  first\n\n\tsecond\r\n third  ") == "first second third"
    assert one_line("red\x1b[31m text\x00\x07end") == "red [31m text end"
    assert one_line("a\u2028b\x85c") == "a b c"


def test_one_line_keeps_printable_unicode() -> None:
    assert one_line("café — 日本 🙂") == "café — 日本 🙂"


def test_one_line_cuts_long_text_with_an_ellipsis() -> None:
    assert one_line("x" * 240) == "x" * 240
    cut = one_line("x" * 241)
    assert len(cut) == 240 and cut.endswith("…")
    assert one_line("abcdefghij", limit=5) == "abcd…"


def test_one_line_of_nothing() -> None:
    assert one_line("") == ""
    assert one_line(" \n\t ") == ""


# --- redact ----------------------------------------------------------------------------------


def test_redact_removes_the_given_secrets_wherever_they_are() -> None:
    assert redact("key hunter2hunter2 and again hunter2hunter2", ("hunter2hunter2",)) == (
        "key *** and again ***"
    )
    assert redact("a b", ("", "b")) == "a ***"


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-Ab3dEf6hIj9kLm",
        "sk-test-SECRETSECRET123",
        "sk-****************************abcd",
        "gsk_0123456789abcdefABCDEF",
        "csk-abcdef123456",
        "xai-ABCDEF123456",
        "fw_3ZabcdEFGH12",
    ],
)
def test_redact_removes_anything_shaped_like_a_key(key: str) -> None:
    assert redact(f"Incorrect API key provided: {key} (see docs)") == (
        "Incorrect API key provided: *** (see docs)"
    )


@pytest.mark.parametrize(
    "text",
    [
        "the task-force met",
        "risk-free",
        "sk-1 is too short to be a key",
        "HTTP 401 Unauthorized: invalid api key",
        "model gpt-4o-mini not found",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


# --- retry_after_seconds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), ("0", 0.0), ("1.5", 1.5), (" 12 ", 12.0), ("-3", 0.0)],
)
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert retry_after_seconds(value) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "7 seconds"])
def test_retry_after_that_means_nothing(value: str | None) -> None:
    assert retry_after_seconds(value) is None


def in_30_s() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)


@pytest.mark.parametrize(
    "render",
    [
        lambda when: format_datetime(when, usegmt=True),  # IMF-fixdate, the one servers send
        lambda when: when.strftime("%A, %d-%b-%y %H:%M:%S GMT"),  # obsolete RFC 850
        lambda when: when.strftime("%a %b %e %H:%M:%S %Y"),  # obsolete asctime, no zone
    ],
    ids=["imf-fixdate", "rfc850", "asctime"],
)
def test_retry_after_as_an_http_date(render: Callable[[datetime], str]) -> None:
    seconds = retry_after_seconds(render(in_30_s()))
    assert seconds is not None
    assert 27.0 <= seconds <= 30.0


def test_retry_after_date_in_the_past_means_now() -> None:
    assert retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT") == 0.0


# --- body_message ----------------------------------------------------------------------------

JSON = "application/json"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error": {"message": "Invalid model\\n  name", "type": "invalid_request_error"}}',
            "Invalid model name",
        ),
        (b'{"error": {"message": "", "type": "server_error"}}', "server_error"),
        (b'{"error": {"msg": "pydantic says no"}}', "pydantic says no"),
        (b'{"error": "Model is loading"}', "Model is loading"),
        (b'{"detail": "Not authenticated"}', "Not authenticated"),
        (b'{"message": "Too many requests"}', "Too many requests"),
        (
            b'{"error": [{"message": "first of several"}, {"message": "second"}]}',
            "first of several",
        ),
        (
            b'{"detail": [{"loc": ["body"], "msg": "Field required", "type": "missing"}]}',
            "Field required",
        ),
        (
            b'[{"error": {"code": 429, "message": "Quota exceeded", "status": "EXHAUSTED"}}]',
            "Quota exceeded",
        ),
    ],
    ids=[
        "error.message",
        "error.type",
        "error.msg",
        "error-string",
        "detail-string",
        "message",
        "error-list",
        "detail-list",
        "top-level-list",
    ],
)
def test_body_message_from_json(body: bytes, message: str) -> None:
    assert body_message(body, JSON) == message


def test_body_message_from_json_without_a_known_shape_is_the_json() -> None:
    assert body_message(b'{"error": {"code": 5}}', JSON) == '{"code": 5}'
    assert body_message(b'{"status": "bad"}', JSON) == '{"status": "bad"}'


def test_body_message_recognises_json_sent_as_text() -> None:
    assert body_message(b'  {"error": {"message": "hidden"}}', "text/plain") == "hidden"


def test_body_message_from_broken_json_is_the_text() -> None:
    assert body_message(b'{"error": \n"unfinished', JSON) == '{"error": "unfinished'


def test_body_message_from_html_is_the_title() -> None:
    page = (
        b"<!DOCTYPE html>\n<html><head><title>\n  502 Bad Gateway &amp; more\n</title>"
        b"<style>body{color:red}</style></head><body><h1>502</h1></body></html>"
    )
    assert body_message(page, "text/html; charset=utf-8") == "502 Bad Gateway & more"
    # Recognised by its start even when the content type is wrong or missing.
    assert body_message(page, "") == "502 Bad Gateway & more"


def test_body_message_from_html_without_a_title_is_its_text() -> None:
    page = b"<html><body><h1>Service\nUnavailable</h1><p>Try <b>later</b>.</p></body></html>"
    assert body_message(page, "text/html") == "Service Unavailable Try later ."


def test_body_message_from_plain_text() -> None:
    assert body_message(b"upstream timed out\r\n(after 60 s)\n", "text/plain") == (
        "upstream timed out (after 60 s)"
    )
    assert body_message(b"caf\xe9 \xff", "text/plain") == "caf\ufffd \ufffd"
    assert body_message(b"", "") == ""


# --- status_error ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "http"),
        (401, "auth"),
        (403, "auth"),
        (404, "not_found"),
        (408, "http"),
        (418, "http"),
        (429, "rate_limit"),
        (500, "server"),
        (502, "server"),
        (529, "server"),
    ],
)
def test_status_error_kind(status: int, kind: str) -> None:
    assert status_error(status, "", b"", "", None, None)[0] == kind


def test_status_error_message_and_retry_after() -> None:
    kind, message, wait = status_error(
        429, "Too Many Requests", b'{"error": {"message": "Slow down"}}', JSON, "7", None
    )
    assert (kind, message, wait) == (
        "rate_limit",
        "HTTP 429 Too Many Requests: Slow down (retry after 7 s)",
        7.0,
    )
    assert status_error(429, "Too Many Requests", b"", "", None, None)[1] == (
        "HTTP 429 Too Many Requests (rate limited)"
    )


def test_status_error_names_the_key_variable_on_auth_failures() -> None:
    _, message, _ = status_error(401, "Unauthorized", b"bad key", "text/plain", None, "GROQ_KEY")
    assert message == "HTTP 401 Unauthorized: bad key — check GROQ_KEY"


def test_status_error_does_not_repeat_the_reason() -> None:
    assert status_error(404, "Not Found", b"Not Found", "text/plain", None, None)[1] == (
        "HTTP 404 Not Found"
    )


# --- transport_error -------------------------------------------------------------------------

BASE = "http://example.test:8000/v1"


def chained(outer: Exception, *causes: BaseException) -> Exception:
    """`outer` raised from the first cause, raised from the next, ... as httpx chains them."""
    current: BaseException = outer
    for cause in causes:
        current.__cause__ = cause
        current = cause
    return outer


def test_transport_error_refused() -> None:
    exc = chained(
        httpx.ConnectError("All connection attempts failed"),
        OSError("All connection attempts failed"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('1.2.3.4', 8000)"),
    )
    kind, message = transport_error(exc, False, BASE)
    assert kind == "connect"
    assert message == "connection refused by example.test — is the server running?"


def test_transport_error_dns() -> None:
    exc = chained(
        httpx.ConnectError("[Errno -3] Temporary failure in name resolution"),
        socket.gaierror(-3, "Temporary failure in name resolution"),
    )
    assert transport_error(exc, False, BASE) == (
        "dns",
        "cannot resolve host example.test (DNS lookup failed)",
    )


def test_transport_error_other_connect_failure_names_the_os_error() -> None:
    exc = chained(
        httpx.ConnectError("All connection attempts failed"),
        OSError(errno.EHOSTUNREACH, "Connect call failed ('10.9.9.9', 80)"),
    )
    assert transport_error(exc, False, BASE) == (
        "connect",
        f"cannot connect to example.test: {os.strerror(errno.EHOSTUNREACH)}",
    )


def test_transport_error_timeouts() -> None:
    assert transport_error(httpx.ConnectTimeout(""), False, BASE)[0] == "timeout"
    assert transport_error(httpx.ReadTimeout(""), False, BASE)[0] == "timeout"
    assert transport_error(httpx.ReadTimeout(""), True, BASE)[0] == "stall"


def test_transport_error_lost_connection() -> None:
    exc = httpx.RemoteProtocolError("peer closed connection without sending complete message")
    assert transport_error(exc, True, BASE) == (
        "reset",
        "connection to example.test was reset mid-stream",
    )
    kind, message = transport_error(httpx.ReadError("[Errno 104] reset"), False, BASE)
    assert kind == "reset" and message.startswith("connection to example.test closed before")
