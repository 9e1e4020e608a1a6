"""`latency-demo serve`: the lab server in the foreground, for any OpenAI client."""

from __future__ import annotations

from demo.lab.process import serve_forever


def serve(host: str, port: int) -> int:
    serve_forever(host, port)
    return 0
