"""`latency-demo ask --backend A --backend B …`: the headless race, against the real lab server.

Backends come from a `--config` file, as a user would define them: OpenAI-compatible endpoints
whose model names select lab profiles, with per-request `lab` overrides to keep replies short.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.cli import main
from demo.lab.process import LabServer
from tests.support.faultserver import Exchange, FaultServer, reply_chunks
from tests.support.pty_capture import run_on_terminal

KEY_VARIABLE = "LATENCY_DEMO_RACE_TEST_KEY"
CONTROL = re.compile(r"\x1b\[\d*[A-Za-z]")
"""A terminal control sequence (cursor movement, line clearing)."""

# The shipped profiles, fastest first: (TTFT s, tokens/s) = fast (0.24, 969), quick (0.3, 250),
# medium (0.6, 129), slow (0.5, 80). Named apart from the profiles and listed out of order on the
# command line, so a correct finish order cannot come from either by accident.
PROFILES = {"alpha": "fast", "bravo": "quick", "charlie": "medium", "delta": "slow"}
SHUFFLED = ["delta", "bravo", "alpha", "charlie"]


def lane(
    name: str,
    base_url: str,
    model: str,
    *,
    kind: str = "local",
    lab: dict[str, Any] | None = None,
    api_key_env: str | None = None,
) -> str:
    """One `[backends.NAME]` table."""
    lines = [
        f"[backends.{name}]",
        f'kind = "{kind}"',
        f'base_url = "{base_url}"',
        f'model = "{model}"',
    ]
    if lab:
        inline = ", ".join(f"{key} = {json.dumps(value)}" for key, value in lab.items())
        lines.append(f"params = {{ lab = {{ {inline} }} }}")
    if api_key_env:
        lines.append(f'api_key_env = "{api_key_env}"')
    return "\n".join(lines) + "\n"


def write_config(path: Path, *tables: str) -> Path:
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


def four_lanes(lab: str, output_tokens: int, **overrides: Any) -> list[str]:
    """The four profiles as configured backends, half of them "remote", half "local"."""
    return [
        lane(
            name,
            f"{lab}/v1",
            profile,
            kind="remote" if index % 2 else "local",
            lab={"output_tokens": output_tokens, **overrides},
        )
        for index, (name, profile) in enumerate(PROFILES.items())
    ]


def backends(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--backend", name)]


def command(config: Path, *ask_args: str) -> list[str]:
    """The console script as a process: `latency-demo --config CONFIG ask ARGS…`."""
    return [sys.executable, "-m", "demo", "--config", str(config), "ask", *ask_args]


def refused_url() -> str:
    """A loopback port nobody listens on, so connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def lab() -> Iterator[str]:
    with LabServer() as server:
        yield server.url


def test_four_configured_backends_race_in_the_order_of_their_speeds(
    tmp_path: Path, lab: str
) -> None:
    config = write_config(tmp_path / "race.toml", *four_lanes(lab, 60))
    done = subprocess.run(
        command(config, *backends(*SHUFFLED), "--json", "Why does time to first token matter?"),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    *lanes, summary = json_lines(done.stdout)

    assert sorted(lane["backend"] for lane in lanes) == sorted(PROFILES)
    for record in lanes:
        assert record["model"] == PROFILES[record["backend"]]
        assert record["error"] is None and record["text"]
        assert record["output_tokens"] == 60 and record["output_tokens_source"] == "usage"
        assert record["race"] == 1
    # Printed as each finished: places in print order, matching the summary's order.
    assert [lane["finish_place"] for lane in lanes] == [1, 2, 3, 4]
    assert [lane["backend"] for lane in lanes] == ["alpha", "bravo", "charlie", "delta"]
    assert lanes[0]["kind"] == "local" and lanes[1]["kind"] == "remote"

    assert summary["summary"] == "race" and summary["race"] == 1
    assert summary["finish_order"] == ["alpha", "bravo", "charlie", "delta"]
    assert summary["winner"] == "alpha" and summary["unfinished"] == {}
    comparisons = summary["comparisons"]
    assert [c["other"] for c in comparisons] == ["bravo", "charlie", "delta"]
    for comparison in comparisons:
        assert comparison["leader"] == "alpha"
        for ratio in ("first_token_ratio", "finish_ratio", "decode_ratio"):
            assert comparison[ratio] > 1, comparison
        assert comparison["sentence"].startswith(f"alpha vs {comparison['other']}: first token")
    assert summary["lines"][0] == "Finish order: 1. alpha → 2. bravo → 3. charlie → 4. delta"


def test_a_refused_lane_reports_its_error_while_the_others_finish(
    tmp_path: Path, lab: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = four_lanes(lab, 10)
    tables[3] = lane("delta", refused_url(), "slow")
    config = write_config(tmp_path / "refused.toml", *tables)

    code = main(["--config", str(config), "ask", *backends(*SHUFFLED), "--json", "hi"])

    out = capsys.readouterr()
    assert code == 1, out.err
    *lanes, summary = json_lines(out.out)
    by_name = {record["backend"]: record for record in lanes}
    assert set(by_name) == set(PROFILES)
    assert "refused" in by_name["delta"]["error"]
    assert by_name["delta"]["finish_place"] is None and by_name["delta"]["text"] == ""
    for name in ("alpha", "bravo", "charlie"):
        assert by_name[name]["error"] is None
        assert by_name[name]["output_tokens"] == 10
    assert sorted(by_name[n]["finish_place"] for n in ("alpha", "bravo", "charlie")) == [1, 2, 3]
    assert summary["unfinished"] == {"delta": "error"}
    assert set(summary["finish_order"]) == {"alpha", "bravo", "charlie"}
    assert "delta: did not finish (error)" in summary["lines"]
    assert "Traceback" not in out.err


def test_a_lane_cut_mid_reply_keeps_its_text_and_spares_the_others(
    tmp_path: Path, lab: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def drops(exchange: Exchange) -> None:
        await exchange.start()
        await exchange.send_all(*reply_chunks("Half a ", "reply")[:-1])
        await exchange.pause(0.1)
        exchange.reset()

    with FaultServer() as faults:
        config = write_config(
            tmp_path / "cut.toml",
            lane("steady", f"{lab}/v1", "fast", lab={"output_tokens": 40}),
            lane("flaky", faults.scenario(drops), "m"),
        )
        code = main(["--config", str(config), "ask", *backends("flaky", "steady"), "--json", "x"])

    out = capsys.readouterr()
    assert code == 1, out.err
    *lanes, summary = json_lines(out.out)
    by_name = {record["backend"]: record for record in lanes}
    assert by_name["flaky"]["error_kind"] == "reset"
    assert by_name["flaky"]["text"] == "Half a reply"
    assert by_name["steady"]["error"] is None and by_name["steady"]["output_tokens"] == 40
    assert by_name["steady"]["finish_place"] == 1
    assert summary["finish_order"] == ["steady"] and summary["unfinished"] == {"flaky": "error"}


def test_a_missing_key_stops_the_race_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    with socket.socket() as trap:
        # A listener that never accepts: any connection attempt would wait in its backlog.
        trap.bind(("127.0.0.1", 0))
        trap.listen(8)
        url = f"http://127.0.0.1:{trap.getsockname()[1]}/v1"
        config = write_config(
            tmp_path / "keys.toml",
            lane("open1", url, "fast"),
            lane("keyed", url, "fast", kind="remote", api_key_env=KEY_VARIABLE),
            lane("open2", url, "slow"),
            lane("open3", url, "quick"),
        )
        code = main(
            ["--config", str(config), "ask", *backends("open1", "keyed", "open2", "open3"), "x"]
        )
        trap.setblocking(False)
        with pytest.raises(BlockingIOError):
            trap.accept()

    out = capsys.readouterr()
    assert code == 2
    assert out.out == ""
    assert out.err.strip().splitlines() == [
        f"latency-demo: keyed needs an API key: set the environment variable {KEY_VARIABLE}"
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (backends("fast", "slow", "fast"), "--backend fast is given more than once"),
        (["--base-url", "http://127.0.0.1:9/v1"], "--base-url works with a single --backend"),
        (["--model", "m"], "--model works with a single --backend"),
        (["--api-key-env", "X"], "--api-key-env works with a single --backend"),
        (backends("quick", "medium", "laptop"), "a race takes 2 to 4 backends, got 5"),
        (["--mic-file", "utterance.wav"], "--mic-file is not supported with several backends"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ask", *backends("fast", "slow"), *extra]
    if "--mic-file" not in extra:
        argv.append("hi")
    code = main(argv)
    out = capsys.readouterr()
    assert code == 2
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.err


def test_unknown_backend_in_a_race_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ask", *backends("fast", "nope"), "hi"])
    out = capsys.readouterr()
    assert code == 2
    assert "unknown backend 'nope'" in out.err and out.out == ""


def test_text_mode_prints_every_lane_in_finish_order_and_the_summary(
    tmp_path: Path, lab: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Short replies; TTFTs spread apart so the order is decided by a wide margin.
    tables = [
        lane(name, f"{lab}/v1", profile, lab={"output_tokens": 12, "ttft_s": ttft})
        for (name, profile), ttft in zip(PROFILES.items(), (0.02, 0.1, 0.25, 0.4), strict=True)
    ]
    config = write_config(tmp_path / "text.toml", *tables)

    code = main(["--config", str(config), "ask", *backends(*SHUFFLED), "--runs", "2", "hello"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.count("=== race") == 2
    assert "=== race 1 of 2 ===" in out and "=== race 2 of 2 ===" in out
    first_race = out.split("=== race 2 of 2 ===")[0]
    headings = [
        f"── {name} · {place} ──"
        for name, place in zip(PROFILES, ("1st", "2nd", "3rd", "4th"), strict=True)
    ]
    positions = [first_race.index(heading) for heading in headings]
    assert positions == sorted(positions)
    assert first_race.count("TTFT ") == 4 and first_race.count("decode ") == 4
    assert first_race.count("You asked: “hello”") == 4
    assert out.count("Finish order: 1. alpha → 2. bravo → 3. charlie → 4. delta") == 2
    for other in ("bravo", "charlie", "delta"):
        assert f"alpha vs {other}: first token" in first_race


def test_json_races_are_numbered_across_runs(
    tmp_path: Path, lab: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "runs.toml", *four_lanes(lab, 5, ttft_s=0.01)[:2])
    code = main(
        ["--config", str(config), "ask", *backends("alpha", "bravo"), "--runs", "3", "--json", "x"]
    )
    assert code == 0
    records = json_lines(capsys.readouterr().out)
    assert [r["race"] for r in records] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert [("summary" in r) for r in records] == [False, False, True] * 3
    # Each run is a fresh conversation: every request carries just the one prompt.
    assert all(
        r["prompt_tokens"] == records[0]["prompt_tokens"] for r in records if "summary" not in r
    )


def test_ctrl_c_cancels_every_lane_and_keeps_what_arrived(tmp_path: Path, lab: str) -> None:
    config = write_config(
        tmp_path / "cancel.toml",
        lane("sprint", f"{lab}/v1", "fast", lab={"output_tokens": 600}),
        lane("crawl", f"{lab}/v1", "slow", lab={"output_tokens": 5000}),
        lane("amble", f"{lab}/v1", "laptop", lab={"output_tokens": 5000, "ttft_s": 0.1}),
    )
    process = subprocess.Popen(
        command(config, *backends("crawl", "sprint", "amble"), "--json", "go"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        # The sprinter's object appears when it finishes; the others are mid-reply by then.
        first = json.loads(process.stdout.readline())
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1, err
    assert first["backend"] == "sprint" and first["finish_place"] == 1
    *lanes, summary = json_lines(rest)
    assert {r["backend"] for r in lanes} == {"crawl", "amble"}
    for record in lanes:
        assert record["cancelled"] is True and record["finish_place"] is None
        assert record["text"]
    assert summary["unfinished"] == {"crawl": "cancelled", "amble": "cancelled"}
    assert summary["finish_order"] == ["sprint"]
    assert "Traceback" not in err


def test_a_terminal_gets_one_live_status_line_per_lane(tmp_path: Path, lab: str) -> None:
    config = write_config(
        tmp_path / "tty.toml",
        lane("zippy", f"{lab}/v1", "fast", lab={"output_tokens": 300}),
        lane("poky", f"{lab}/v1", "slow", lab={"output_tokens": 40}),
    )
    done, screen = run_on_terminal(command(config, *backends("zippy", "poky"), "--json", "hi"))
    assert done.returncode == 0
    assert len(json_lines(done.stdout)) == 3
    lines = [CONTROL.sub("", line) for line in screen.replace("\r", "").split("\n")]
    # Redrawn in place: the cursor goes back up over both lines before each redraw.
    assert "\x1b[2F" in screen
    assert any(line.startswith("poky ") and "streaming" in line for line in lines)
    assert any(line.startswith("zippy") and "done" in line and "tok/s" in line for line in lines)
    finals = [line for line in lines if " done " in line]
    assert any(line.startswith("poky ") and "40 tokens" in line for line in finals)
