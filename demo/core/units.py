"""How figures are written, the same way in the TUI and in the terminal."""

from __future__ import annotations


def seconds(value: float | None) -> str:
    """A duration: milliseconds below one second, seconds above."""
    if value is None:
        return "—"
    if value < 1.0:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def rate(value: float | None) -> str:
    """Tokens per second, with a thousands separator."""
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f} tok/s"
    return f"{value:.1f} tok/s"


def tokens(count: int, source: str) -> str:
    """A token count, marked `≈` when it is an estimate rather than the server's usage."""
    return f"{count:,}" if source == "usage" else f"≈{count:,} (est.)"


def server_timing(timing: dict[str, object]) -> str:
    """Provider-side timings on one line, e.g. `groq: queue 12 ms, prompt 30 ms, …`."""
    parts = []
    for key, value in timing.items():
        if key == "provider" or not isinstance(value, int | float):
            continue
        if key.endswith("_per_s"):
            parts.append(f"{key.removesuffix('_tokens_per_s')} {rate(float(value))}")
        else:
            parts.append(f"{key.removesuffix('_s')} {seconds(float(value))}")
    return f"{timing.get('provider', 'server')}: {', '.join(parts)}"


def public_url(url: str) -> str:
    """A URL fit to show or store: without user-info, query or fragment, which can hold keys."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not a URL anyone could use: keep nothing of it
        return "(invalid URL)"
    if not parts.scheme and not host:
        return url.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
