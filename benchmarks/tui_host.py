"""The app in a real terminal, as `latency-demo --config FILE --backend NAME` runs it, plus one
thing a benchmark driving it in tmux needs: when the app exits, each turn's request id and
figures are written to a JSON file, so the screen can be matched with the lab server's log.

The app itself is untouched: the same settings, `LatencyApp` and `run()`; quitting with Ctrl+Q
first copies the chat screen's results.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import demo.ui.app
from demo.config import load_settings
from demo.core.turn import TurnResult
from demo.ui.app import LatencyApp


class HostedApp(LatencyApp):
    """The app, keeping its turns for after it has exited (its screens are gone by then)."""

    # A relative CSS path is resolved beside the subclass's module: point at the app's own.
    CSS_PATH = str(Path(demo.ui.app.__file__).with_name("app.tcss"))
    kept: list[TurnResult]

    async def action_quit(self) -> None:
        self.kept = list(self.chat.results)
        await super().action_quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--result", type=Path, required=True, help="write the turns here")
    args = parser.parse_args()
    app = HostedApp(load_settings(args.config), backend=args.backend)
    app.kept = []
    turns: list[dict[str, object]] = []
    try:
        app.run()
    finally:
        for result in app.kept:
            turns.append(
                {
                    "request_id": result.request_id,
                    "ttft_s": result.metrics.ttft_s,
                    "decode_tokens_per_s": result.metrics.decode_tokens_per_s,
                    "output_tokens": result.metrics.output_tokens,
                    "error": result.metrics.error,
                    "text": result.text,
                }
            )
        args.result.write_text(json.dumps(turns), encoding="utf-8")
    return app.return_code or 0


if __name__ == "__main__":
    raise SystemExit(main())
