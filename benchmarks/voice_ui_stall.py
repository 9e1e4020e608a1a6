"""How long the UI's event loop stalls during a voice turn (speech-to-text and speech out).

A key press waits at most one stall before it is handled, so the longest stall bounds key →
handled. Headless app, virtual microphone, real Whisper and espeak-ng, lab `fast` profile; a
2 ms ticker on the app's loop records every gap from F5 until the spoken reply has finished.

    .venv/bin/python benchmarks/voice_ui_stall.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{ROOT / 'tests/support/asound.conf'}"

from demo.config import load_settings  # noqa: E402
from demo.lab.process import LabServer  # noqa: E402
from demo.ui.app import LatencyApp  # noqa: E402
from demo.voice.session import VoiceOptions  # noqa: E402
from tests.support.audio import speak_to_wav  # noqa: E402


async def one_run(lab_url: str, wav: Path, cache: Path) -> list[float]:
    settings = load_settings()
    backends = dict(settings.backends)
    backends["fast"] = replace(backends["fast"], base_url=f"{lab_url}/v1")
    app = LatencyApp(
        replace(settings, backends=backends, max_tokens=200),
        voice=VoiceOptions(mic_file=wav, speak=True, cache_dir=cache),
    )
    gaps: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        voice = app.voice
        assert voice is not None
        while not voice.wait_loaded(0):
            await pilot.pause(0.05)
        running = True

        async def tick() -> None:
            last = time.perf_counter()
            while running:
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await pilot.press("f5")
        while not app.chat.results:
            await pilot.pause(0.02)
        speaker = voice._speaker
        while speaker is not None and (voice._reply is None or speaker.playing):
            await pilot.pause(0.02)
        running = False
        await ticker
    return gaps


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LabServer() as lab:
        os.environ["TEST_AUDIO_SPEAKER_RAW"] = str(Path(tmp) / "played.raw")
        wav = speak_to_wav("What is the capital of Australia?", Path(tmp) / "q.wav")
        worst, p99s = [], []
        for _ in range(args.runs):
            gaps = await one_run(lab.url, wav, Path(tmp) / "models")
            gaps.sort()
            worst.append(gaps[-1] * 1000)
            p99s.append(gaps[int(len(gaps) * 0.99)] * 1000)
        print(f"UI loop during a voice turn, {args.runs} runs (2 ms ticker)")
        for label, values in (("p99", p99s), ("max", worst)):
            runs = [round(x, 1) for x in values]
            print(f"  gap {label}  median {statistics.median(values):.1f} ms  (runs: {runs})")


if __name__ == "__main__":
    asyncio.run(main())
