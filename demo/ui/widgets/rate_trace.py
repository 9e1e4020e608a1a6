"""A tokens/s trace of the current reply, scaled from zero so a steady rate reads as steady."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from demo.core.units import rate

_LEVELS = " ▁▂▃▄▅▆▇█"


class RateTrace(Widget):
    """Columns of block characters, one per sample, newest on the right.

    Textual's `Sparkline` scales between the data's minimum and maximum, which turns a steady
    969 tokens/s into noise; a rate wants a zero baseline. When there are more samples than
    columns, neighbouring samples are averaged so the whole reply always fits.
    """

    DEFAULT_CSS = """
    RateTrace {
        height: 4;
        color: $success;
    }
    """

    samples: reactive[tuple[float, ...]] = reactive(tuple, layout=False)

    def render(self) -> Text:
        width = max(1, self.size.width)
        rows = max(1, self.size.height - 1)
        values = _fit(list(self.samples), width)
        peak = max(values, default=0.0)
        text = Text(no_wrap=True, overflow="crop")
        if peak <= 0:
            text.append("waiting for tokens…", style="dim")
            return text
        steps = rows * (len(_LEVELS) - 1)
        heights = [round(v / peak * steps) for v in values]
        for row in range(rows, 0, -1):
            floor = (row - 1) * (len(_LEVELS) - 1)
            line = "".join(_LEVELS[max(0, min(len(_LEVELS) - 1, h - floor))] for h in heights)
            text.append(line + "\n")
        text.append(f"peak {rate(peak)}", style="dim")
        return text


def _fit(values: list[float], width: int) -> list[float]:
    """At most `width` values: averages of equal runs when there are more."""
    if len(values) <= width:
        return values
    fitted = []
    for column in range(width):
        start = column * len(values) // width
        end = max(start + 1, (column + 1) * len(values) // width)
        run = values[start:end]
        fitted.append(sum(run) / len(run))
    return fitted
