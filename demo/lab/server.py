"""The lab server: an OpenAI-compatible chat-completions endpoint that answers at a known pace.

It imitates a provider of known speed so the app has something honest to measure offline. Every
reply follows an absolute timetable from the moment its request arrived, and every chunk's send
time is logged, so a client's measurements can be checked against what was really sent.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from demo.lab.content import ContentLibrary, default_library
from demo.lab.profiles import Profile
from demo.lab.reply import ReplyPlan, plan_reply
from demo.lab.request import CompletionRequest, RequestError, parse_request
from demo.lab.requestlog import RequestLog, RequestRecord
from demo.lab.wire import DONE, ChunkWriter, completion_body, error_body

FINGERPRINT = "fp_lab"
"""The `system_fingerprint` of every reply."""
OWNER = "latency-demo-lab"
"""The `owned_by` of every model in `/v1/models`."""
BURST_YIELD = 64
"""Chunks sent back to back (all already due) before letting other requests run."""


def create_app(
    profiles: Mapping[str, Profile],
    *,
    library: ContentLibrary | None = None,
    log: RequestLog | None = None,
) -> Starlette:
    """The lab server's ASGI app, serving `profiles` as models.

    Args:
        profiles: The models it serves, by name (as from `load_profiles`).
        library: Where replies come from; the shipped answers when omitted.
        log: Where requests are recorded; a fresh log of the last 500 when omitted. It is also
            reachable as `app.state.request_log` for in-process callers.
    """
    content = library if library is not None else default_library()
    request_log = log if log is not None else RequestLog()
    created = int(time.time())

    async def chat_completions(request: Request) -> Response:
        received_ns = time.perf_counter_ns()
        try:
            parsed = parse_request(await request.body())
        except RequestError as exc:
            return _error_response(exc)
        profile = profiles.get(parsed.model)
        if profile is None:
            return _error_response(
                RequestError(
                    f"The model `{parsed.model[:100]}` does not exist or you do not have "
                    f"access to it. The lab serves: {', '.join(profiles)}.",
                    param="model",
                    code="model_not_found",
                    status=404,
                )
            )
        plan = plan_reply(parsed, profile, content.answer_for)
        record = request_log.open(profile.name, received_ns, stream=parsed.stream, seed=plan.seed)
        return _Reply(parsed, plan, record)

    async def list_models(request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": created, "owned_by": OWNER}
                    for name in profiles
                ],
            }
        )

    async def get_request(request: Request) -> Response:
        record = request_log.get(request.path_params["request_id"])
        if record is None:
            return _error_response(
                RequestError(
                    "No such request in the lab log (it keeps only the most recent ones).",
                    param="id",
                    code="not_found",
                    status=404,
                )
            )
        return JSONResponse(record.to_json())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "profiles": list(profiles)})

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/lab/requests/{request_id}", get_request, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.request_log = request_log
    return app


def _error_response(error: RequestError) -> JSONResponse:
    return JSONResponse(
        error_body(error.message, param=error.param, code=error.code), status_code=error.status
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    # Unknown paths and methods answer in OpenAI's error shape too, so clients report them well.
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        error_body(f"{request.method} {request.url.path}: {exc.detail}", code=None),
        status_code=exc.status_code,
        headers=exc.headers,
    )


class _Reply(Response):
    """A completion sent on its timetable, streamed or whole, logging every send."""

    def __init__(self, request: CompletionRequest, plan: ReplyPlan, record: RequestRecord) -> None:
        self._request = request
        self._plan = plan
        self._record = record
        self._identity: dict[str, Any] = {
            "completion_id": f"chatcmpl-lab{record.id.removeprefix('req_')}",
            "created": int(time.time()),
            "model": request.model,
            "fingerprint": FINGERPRINT,
        }
        self.status_code = 200
        self.background = None
        if request.stream:
            self.media_type = "text/event-stream"
            headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        else:
            self.media_type = "application/json"
            self.body = completion_body(
                **self._identity,
                text=plan.text,
                finish_reason=plan.finish_reason,
                prompt_tokens=plan.prompt_tokens,
                completion_tokens=len(plan.tokens),
            )
            headers = {}
        headers["x-request-id"] = record.id
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A departed client is only noticed by reading `receive`; uvicorn drops later sends
        # silently. Watching it in a sibling task cancels the reply at its next wait.
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                if self._record.done_sent_ns is None:
                    self._record.disconnected = True
                group.cancel_scope.cancel()

            group.start_soon(watch_disconnect)
            if self._request.stream:
                await self._stream(send)
            else:
                await self._whole(send)
            group.cancel_scope.cancel()

    async def _stream(self, send: Send) -> None:
        plan, record = self._plan, self._record
        writer = ChunkWriter(**self._identity, include_usage=self._request.include_usage)
        tokens = plan.tokens
        per_chunk = plan.pace.tokens_per_chunk
        chunks = record.chunks
        now = time.perf_counter_ns
        sleep = asyncio.sleep
        burst = 0
        # Headers go out at once, as providers send them before the model has produced anything.
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        for index, due in enumerate(plan.timetable(record.received_ns)):
            wait_ns = due - now()
            if wait_ns > 0:
                await sleep(wait_ns / 1e9)
                burst = 0
            else:
                burst += 1
                if burst >= BURST_YIELD:
                    await sleep(0)
                    burst = 0
            if index == 0:
                await send({"type": "http.response.body", "body": writer.role(), "more_body": True})
                record.role_sent_ns = now()
            piece = tokens[index * per_chunk : (index + 1) * per_chunk]
            text = "".join(piece)
            await send(
                {"type": "http.response.body", "body": writer.content(text), "more_body": True}
            )
            chunks.append((due, now(), len(piece), len(text)))
        tail = [writer.finish(plan.finish_reason)]
        if self._request.include_usage:
            tail.append(writer.usage(plan.prompt_tokens, len(tokens)))
        for event in tail:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        record.finish_reason = plan.finish_reason
        await send({"type": "http.response.body", "body": DONE, "more_body": False})
        record.done_sent_ns = now()

    async def _whole(self, send: Send) -> None:
        plan, record = self._plan, self._record
        # Sent whole when the last chunk would have been: the same total time as streaming.
        due = deque(plan.timetable(record.received_ns), maxlen=1)[0]
        wait_ns = due - time.perf_counter_ns()
        if wait_ns > 0:
            await asyncio.sleep(wait_ns / 1e9)
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
        sent_ns = time.perf_counter_ns()
        record.chunks.append((due, sent_ns, len(plan.tokens), len(plan.text)))
        record.finish_reason = plan.finish_reason
        record.done_sent_ns = sent_ns
