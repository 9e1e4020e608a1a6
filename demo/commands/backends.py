"""`latency-demo backends`: what is configured, and which keys are set."""

from __future__ import annotations

import os

from demo.config import AppSettings
from demo.core.units import public_url


def list_backends(settings: AppSettings) -> int:
    rows = [("NAME", "KIND", "MODEL", "URL", "KEY")]
    for spec in settings.backends.values():
        if spec.api_key_env:
            key = f"{spec.api_key_env} {'set' if os.environ.get(spec.api_key_env) else 'NOT SET'}"
        else:
            key = "no key needed"
        url = public_url(spec.base_url) if spec.base_url else "embedded lab server"
        rows.append((spec.name, spec.kind, spec.model, url, key))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + row[4]
        )
    path = settings.path
    state = "" if path is not None and path.exists() else " (not present; defaults in use)"
    print(f"\nconfig file: {path}{state}")
    print(f"default backend: {settings.default_backend}")
    return 0
