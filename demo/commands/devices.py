"""`latency-demo devices`: the audio devices PortAudio sees, for `--input-device` and settings."""

from __future__ import annotations

import sys


def list_devices() -> int:
    from demo.voice.devices import format_devices

    try:
        print(format_devices())
    except Exception as exc:  # PortAudio missing or broken: say so, don't trace
        print(f"latency-demo: cannot list audio devices: {exc}", file=sys.stderr)
        return 1
    return 0
