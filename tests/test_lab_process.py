"""The lab server as the app runs it: a child process, timed against the app's own client."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.backends.base import BackendSpec
from demo.backends.openai import OpenAIBackend
from demo.core.conversation import ChatRequest, Message
from demo.core.events import ContentChunk, RequestSent, ResponseStarted, StreamEvent
from demo.lab.content import suggested_prompts
from demo.lab.keepup import measure
from demo.lab.process import LabServer, LabServerError

PROJECT = Path(__file__).resolve().parent.parent
READY = re.compile(r"^LAB-READY (http://127\.0\.0\.1:\d+)$")


@pytest.fixture(scope="module")
def lab() -> Iterator[LabServer]:
    with LabServer() as server:
        server.wait_ready()
        yield server


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT), env.get("PYTHONPATH")) if p)
    return env


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Whether process `pid` (not necessarily our child) ended within `timeout` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


async def turn(url: str, overrides: dict[str, Any], prompt: str = "Hi") -> list[StreamEvent]:
    spec = BackendSpec(name="fast", kind="lab", model="fast", base_url=url + "/v1")
    backend = OpenAIBackend(spec, environ={})
    request = ChatRequest((Message("user", prompt),), extra={"lab": overrides})
    try:
        return [event async for event in backend.stream(request)]
    finally:
        await backend.aclose()


async def logged(url: str, request_id: str | None) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/lab/requests/{request_id}")
    response.raise_for_status()
    record: dict[str, Any] = response.json()
    return record


async def test_arrivals_follow_the_timetable_the_server_logged(lab: LabServer) -> None:
    overrides = {"ttft_s": 0.2, "tokens_per_s": 200, "tokens_per_chunk": 1, "jitter_ms": 0}
    events = await turn(lab.url, {**overrides, "output_tokens": 60})
    [sent] = [e for e in events if isinstance(e, RequestSent)]
    [started] = [e for e in events if isinstance(e, ResponseStarted)]
    chunks = [e for e in events if isinstance(e, ContentChunk)]
    record = await logged(lab.url, started.request_id)
    assert len(record["chunks"]) == len(chunks) == 60

    # The client's first content arrives within a few ms of the server's logged send. The gap can
    # be slightly negative: the server reads the clock after its write returns, and on a busy
    # machine it may be preempted in between while the client, on another core, reads the chunk.
    first_gap_ms = (chunks[0].t_ns - record["first_content_sent_ns"]) / 1e6
    assert -15 < first_gap_ms < 15
    # Time to first token, as the client measures it, is the profile's.
    ttft_s = (chunks[0].t_ns - sent.t_ns) / 1e9
    assert 0.2 <= ttft_s < 0.25
    # Every chunk left on time and arrived soon after.
    late_ms = [(c["sent_ns"] - c["due_ns"]) / 1e6 for c in record["chunks"]]
    delivery_ms = [
        (event.t_ns - c["sent_ns"]) / 1e6 for event, c in zip(chunks, record["chunks"], strict=True)
    ]
    assert min(late_ms) >= 0 and statistics.median(late_ms) < 5
    assert statistics.median(delivery_ms) < 5
    # 5 ms per token: the last chunk is due 59 intervals after the first.
    span_s = (record["last_content_sent_ns"] - record["first_content_sent_ns"]) / 1e9
    assert span_s == pytest.approx(59 / 200, abs=0.01)


def test_the_child_speaks_the_same_wire_format(lab: LabServer) -> None:
    body = {
        "model": "quick",
        "messages": [{"role": "user", "content": "What is the capital of Australia?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "lab": {"ttft_s": 0, "tokens_per_s": 100_000},
    }
    with httpx.stream("POST", f"{lab.url}/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())
    # Each event is one `data:` line followed by a blank line.
    assert all(line.startswith("data: ") for line in lines[0::2])
    assert set(lines[1::2]) == {""} and len(lines) % 2 == 0
    data = [line.removeprefix("data: ") for line in lines[0::2]]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text.startswith("The capital of Australia is **Canberra**.")


async def test_the_server_keeps_up_with_50000_tokens_a_second(lab: LabServer) -> None:
    result = await measure(lab.url, 50_000, 25_000, 10)
    assert result.chunks == 2_500
    assert result.sent_rate >= 45_000
    assert result.received_rate >= 40_000


async def test_wait_ready_async_does_not_block_the_loop() -> None:
    server = LabServer()
    server.start()
    try:
        url = await server.wait_ready_async(timeout=20)
        assert READY.match(f"LAB-READY {url}")
    finally:
        assert server.stop() == 0


def test_start_and_stop_are_idempotent() -> None:
    server = LabServer()
    assert server.stop() is None
    server.start()
    pid = server.pid
    server.start()
    assert server.pid == pid
    url = server.url
    assert httpx.get(f"{url}/health").status_code == 200
    assert server.running
    assert server.stop() == 0
    assert server.stop() == 0
    assert not server.running
    assert wait_for_exit(pid or 0, 1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


def test_a_stopped_server_dropped_its_replies_quietly() -> None:
    # Stopping mid-reply must neither hang nor spill a traceback.
    with LabServer() as server:
        body = {
            "model": "laptop",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
            "lab": {"ttft_s": 0},
        }
        with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if '"content":"' in line and '"content":""' not in line:
                    break
            assert server.stop(timeout=5) == 0
    assert not any("Traceback" in line or "ERROR" in line for line in server.stderr_tail())


def test_a_failing_child_reports_its_stderr(tmp_path: Path) -> None:
    broken = tmp_path / "profiles.toml"
    broken.write_text("[profiles.x]\nlabel = 'X'\n", encoding="utf-8")
    server = LabServer(profiles_path=broken)
    server.start()
    try:
        with pytest.raises(LabServerError) as caught:
            server.wait_ready(timeout=20)
        message = str(caught.value)
        assert "exited (code 2)" in message
        assert "profile 'x': missing key 'ttft_s'" in message
    finally:
        server.stop()


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        server = LabServer(port=taken.getsockname()[1])
        server.start()
        try:
            with pytest.raises(LabServerError, match="cannot listen"):
                server.wait_ready(timeout=20)
        finally:
            server.stop()


def test_the_child_exits_when_its_stdin_closes() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "demo.lab", "--host", "127.0.0.1", "--port", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        ready = READY.match(child.stdout.readline().strip())
        assert ready, "no LAB-READY line"
        assert httpx.get(f"{ready.group(1)}/health").status_code == 200
        child.stdin.close()
        assert child.wait(timeout=10) == 0
        assert child.stderr is not None and child.stderr.read() == ""
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_the_child_exits_when_its_parent_is_killed() -> None:
    parent_code = (
        "import sys\n"
        "from demo.lab.process import LabServer\n"
        "lab = LabServer()\n"
        "lab.start()\n"
        "print(lab.pid, lab.url, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_env(),
        text=True,
    )
    assert parent.stdout is not None
    pid_text, url = parent.stdout.readline().split()
    child_pid = int(pid_text)
    try:
        assert httpx.get(f"{url}/health").status_code == 200
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_for_exit(child_pid, 10), "the lab server outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()
        if not wait_for_exit(child_pid, 0):
            os.kill(child_pid, signal.SIGKILL)


def test_serve_forever_announces_itself_and_stops_on_ctrl_c() -> None:
    code = "from demo.lab.process import serve_forever\nserve_forever('127.0.0.1', 0)\n"
    server = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url, first
        models = [server.stdout.readline() for _ in range(5)]
        assert "'fast'" in models[0] and "969 tokens/s" in models[0]
        assert httpx.get(f"{url.group(0)}/v1/models").status_code == 200
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=10) == 0
        assert server.stderr is not None and "Traceback" not in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_code_sample_answer_runs_against_the_lab(
    lab: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shipped code sample is presented as working code: run it.
    [sample] = [p for p in suggested_prompts() if p.title == "Code sample"]
    record = httpx.post(
        f"{lab.url}/v1/chat/completions",
        json={
            "model": "fast",
            "messages": [{"role": "user", "content": sample.prompt}],
            "lab": {"ttft_s": 0, "tokens_per_s": 100_000},
        },
        timeout=30,
    ).json()
    answer = record["choices"][0]["message"]["content"]
    [code] = re.findall(r"^```python\n(.*?)^```$", answer, re.MULTILINE | re.DOTALL)
    module = types.ModuleType("lab_code_sample")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look the module up
    exec(compile(code, "lab_code_sample.py", "exec"), module.__dict__)
    timing = module.measure_stream(f"{lab.url}/v1", "fast", "What is the capital of Australia?")
    assert timing.chunks > 5
    assert timing.tokens > 5
    assert 0.2 < timing.ttft_s < 1.0
    assert timing.tokens_per_s is not None and 500 < timing.tokens_per_s < 2000
