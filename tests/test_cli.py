"""The console script, run as a real process against the real lab server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.lab.process import LabServer

REQUIRED_FIELDS = {
    "backend",
    "model",
    "base_url",
    "ttft_s",
    "decode_tokens_per_s",
    "e2e_s",
    "output_tokens",
    "output_tokens_source",
    "chunks",
    "chunk_gap_p50_s",
    "chunk_gap_p95_s",
    "server_timing",
    "error",
    "text",
}


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def lab() -> Iterator[str]:
    with LabServer() as server:
        yield server.url


def test_ask_json_on_the_embedded_lab_backend() -> None:
    result = run(
        "ask",
        "--backend",
        "fast",
        "--json",
        "--max-tokens",
        "60",
        "What is the capital of Australia?",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    turn = json.loads(lines[0])
    assert turn.keys() >= REQUIRED_FIELDS
    assert turn["backend"] == "fast"
    assert turn["error"] is None
    assert turn["output_tokens_source"] == "usage"
    assert turn["ttft_s"] == pytest.approx(0.24, abs=0.05)
    assert turn["text"]
    assert turn["base_url"].startswith("http://127.0.0.1:")
    assert "Traceback" not in result.stderr


def test_ask_runs_prints_one_object_per_turn_and_human_output(lab: str) -> None:
    result = run(
        "ask",
        "--base-url",
        f"{lab}/v1",
        "--model",
        "fast",
        "--runs",
        "3",
        "--max-tokens",
        "20",
        "--json",
        "hi",
    )
    assert result.returncode == 0, result.stderr
    turns = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(turns) == 3
    assert all(t["model"] == "fast" and t["output_tokens"] == 20 for t in turns)
    assert turns[0]["backend"] == "127.0.0.1"

    human = run("ask", "--base-url", f"{lab}/v1", "--model", "slow", "--max-tokens", "10", "hi")
    assert human.returncode == 0, human.stderr
    assert "TTFT" in human.stdout and "decode" in human.stdout and "tok/s" in human.stdout


def test_ask_with_a_config_backend_and_missing_key(tmp_path: Path, lab: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[backends.mylab]\nbase_url = "{lab}/v1"\nmodel = "slow"\n'
        '[backends.keyed]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
        'api_key_env = "LATENCY_DEMO_TEST_KEY"\n'
    )
    ok = run(
        "--config", str(config), "ask", "--backend", "mylab", "--json", "--max-tokens", "5", "hi"
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["backend"] == "mylab"

    env = {k: v for k, v in os.environ.items() if k != "LATENCY_DEMO_TEST_KEY"}
    missing = subprocess.run(
        [sys.executable, "-m", "demo", "--config", str(config), "ask", "--backend", "keyed", "hi"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert missing.returncode == 2
    assert "LATENCY_DEMO_TEST_KEY" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_ask_reports_a_connection_error_as_json() -> None:
    result = run("ask", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--json", "hi")
    assert result.returncode == 1
    turn = json.loads(result.stdout)
    assert "refused" in turn["error"]
    assert "Traceback" not in result.stderr


def test_bad_config_and_unknown_backend_are_one_line_errors(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[backends.x]\nmodel = 1\nbase_url = "http://a/v1"\n')
    bad = run("--config", str(config), "backends")
    assert bad.returncode == 2
    assert str(config) in bad.stderr and "backends.x.model" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1

    unknown = run("ask", "--backend", "nope", "hi")
    assert unknown.returncode == 2
    assert "unknown backend 'nope'" in unknown.stderr

    empty = run("ask", "--backend", "fast", "   ")
    assert empty.returncode == 2
    assert "empty" in empty.stderr


def test_backends_lists_key_state_and_config_path() -> None:
    result = run("backends", env={"GROQ_API_KEY": "gsk-should-not-appear"})
    assert result.returncode == 0
    assert "GROQ_API_KEY set" in result.stdout
    assert "CEREBRAS_API_KEY" in result.stdout
    assert "config file:" in result.stdout
    assert "gsk-should-not-appear" not in result.stdout
    for name in ("fast", "slow", "ollama", "openrouter"):
        assert name in result.stdout


def test_serve_runs_the_lab_server_in_the_foreground() -> None:
    import re
    import signal

    import httpx

    process = subprocess.Popen(
        [sys.executable, "-m", "demo", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert match, first
        models = httpx.get(f"{match.group(0)}/v1/models", timeout=10).json()
        assert {"fast", "slow"} <= {m["id"] for m in models["data"]}
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "Traceback" not in err
