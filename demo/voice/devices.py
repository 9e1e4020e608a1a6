"""The audio devices PortAudio sees, for `latency-demo devices` and the device settings."""

from __future__ import annotations

from dataclasses import dataclass

from demo.voice.capture import load_sounddevice

__all__ = ["DeviceInfo", "format_devices", "list_devices"]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One device, as `--input-device` / `voice.input_device` can name it (index or name)."""

    index: int
    name: str
    inputs: int
    """Input channels (0: not a microphone)."""
    outputs: int
    """Output channels (0: not a speaker)."""
    default_in: bool
    default_out: bool
    host_api: str = ""
    default_rate: float = 0.0


def list_devices() -> list[DeviceInfo]:
    """Every device PortAudio knows, in its order (the index is what settings refer to).

    Raises:
        AudioUnavailable: sounddevice or PortAudio is not installed.
    """
    sd = load_sounddevice()
    devices = sd.query_devices()
    apis = [api["name"] for api in sd.query_hostapis()]
    default_in, default_out = _defaults(sd)
    return [
        DeviceInfo(
            index=int(device["index"]),
            name=str(device["name"]),
            inputs=int(device["max_input_channels"]),
            outputs=int(device["max_output_channels"]),
            default_in=int(device["index"]) == default_in,
            default_out=int(device["index"]) == default_out,
            host_api=apis[device["hostapi"]] if 0 <= device["hostapi"] < len(apis) else "",
            default_rate=float(device["default_samplerate"]),
        )
        for device in devices
    ]


def _defaults(sd: object) -> tuple[int, int]:
    """The default input and output device indexes (−1 when there is none)."""
    pair = sd.default.device  # type: ignore[attr-defined]
    try:
        return int(pair[0]), int(pair[1])
    except (TypeError, ValueError, IndexError):
        return -1, -1


def format_devices(devices: list[DeviceInfo] | None = None) -> str:
    """A table of devices for the terminal; `<` and `>` mark the default input and output.

    Args:
        devices: what to show; None lists the devices now (and may raise `AudioUnavailable`).
    """
    if devices is None:
        devices = list_devices()
    if not devices:
        return "no audio devices found"
    rows = [("", "index", "name", "in", "out", "rate", "host API")]
    for device in devices:
        marks = ("<" if device.default_in else " ") + (">" if device.default_out else " ")
        rate = f"{device.default_rate / 1000:g} kHz" if device.default_rate else ""
        rows.append(
            (
                marks,
                str(device.index),
                device.name,
                str(device.inputs),
                str(device.outputs),
                rate,
                device.host_api,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    right = {1, 3, 4, 5}
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    lines.append("< default input   > default output   (use the index or a part of the name)")
    return "\n".join(lines)
