"""Voice-to-voice on the lab's `fast` and `slow` profiles: the difference is the demo.

Runs `latency-demo ask --mic-file U.wav --speak --json` (a real process: Whisper base int8,
espeak-ng, PortAudio on the ALSA file device of tests/support/asound.conf) with a ~4 s spoken
question, several times per profile, and prints the median of every stage.

    .venv/bin/python benchmarks/voice_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.audio import speak_to_wav  # noqa: E402

QUESTION = "Please tell me, in a few words, what is the capital city of Australia?"
STAGES = (
    "speech_s",
    "stt_s",
    "ttft_s",
    "first_sentence_s",
    "tts_first_audio_s",
    "voice_to_voice_s",
)


def one_turn(backend: str, wav: Path, workdir: Path) -> dict[str, float]:
    env = {
        **os.environ,
        "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{ROOT / 'tests/support/asound.conf'}",
        "TEST_AUDIO_SPEAKER_RAW": str(workdir / "played.raw"),
        "XDG_CACHE_HOME": str(workdir / "cache"),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo",
            "ask",
            "--backend",
            backend,
            "--mic-file",
            str(wav),
            "--speak",
            "--json",
            "--max-tokens",
            "80",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise SystemExit(f"{backend}: exit {result.returncode}: {result.stderr[-500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        wav = speak_to_wav(QUESTION, workdir / "question.wav", rate=150)
        medians: dict[str, dict[str, float]] = {}
        for backend in ("fast", "slow"):
            turns = [one_turn(backend, wav, workdir) for _ in range(args.runs)]
            medians[backend] = {s: statistics.median(t[s] for t in turns) for s in STAGES}
            medians[backend]["rtf"] = statistics.median(t["stt_rtf"] for t in turns)
        print(f"voice turns, median of {args.runs} (seconds)")
        print(f"{'stage':<20}{'fast':>10}{'slow':>10}")
        for stage in (*STAGES, "rtf"):
            print(f"{stage:<20}{medians['fast'][stage]:>10.3f}{medians['slow'][stage]:>10.3f}")
        gap = medians["slow"]["voice_to_voice_s"] - medians["fast"]["voice_to_voice_s"]
        print(f"slow − fast voice-to-voice: {gap:.3f} s")


if __name__ == "__main__":
    main()
