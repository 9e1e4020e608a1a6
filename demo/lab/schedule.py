"""When each chunk of a reply is due: an absolute timetable, so sending never drifts.

Every due time is computed from the request's start, never from the previous send, so a chunk
that went out late does not push the rest of the reply later: the next ones catch up.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from demo.lab.profiles import Profile


def chunk_interval_ns(pace: Profile) -> float:
    """Nominal time between two content chunks."""
    return pace.tokens_per_chunk / pace.tokens_per_s * 1e9


def due_times(start_ns: int, chunks: int, pace: Profile, seed: int) -> Iterator[int]:
    """The `time.perf_counter_ns()` at which each content chunk is due.

    Chunk k is due at `start + ttft + k * tokens_per_chunk / tokens_per_s`, moved by a Gaussian
    offset with a standard deviation of `jitter_ms` (drawn from `seed`, so a request can be
    replayed), then clipped so that chunks stay in order and none is due before the start.
    """
    rng = random.Random(seed)
    ttft_ns = pace.ttft_s * 1e9
    interval_ns = chunk_interval_ns(pace)
    sd_ns = pace.jitter_ms * 1e6
    previous = start_ns
    for index in range(chunks):
        offset = rng.gauss(0.0, sd_ns) if sd_ns else 0.0
        due = max(previous, start_ns + round(ttft_ns + index * interval_ns + offset))
        previous = due
        yield due
