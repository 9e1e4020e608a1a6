"""Releasing a backend's pieces on an absolute timetable, for backends that imitate a stream.

The scripted backend (a reply at a chosen pace) and the replay backend (a recorded reply at its
recorded pace) both know in advance when each piece is due. Each piece is due at a fixed time
from the start, so sleeping late for one piece never pushes the rest back: the next wake-up aims
at the next due time, and a wake-up that comes late releases every piece due by then.

A timer cannot wake thousands of times a second reliably, so pieces due within `min_wake_ns` of
the last one released can be held and released together, when the last of them is due; the
first piece is always released alone, at its own time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence

FINE_NS = 1_500_000
"""The last stretch before a due time, slept on the thread rather than on the event loop.

The loop's timer wakes up to a millisecond late (the selector's timeout is rounded up to whole
milliseconds), which would skew a 40 ms decode span by a few per cent. So the loop sleeps until
just before the due time and the thread sleeps the rest, which the kernel times to tens of µs.
The backend's loop runs nothing else, so the short blocking sleep delays nobody.
"""


async def sleep_until(due_ns: int) -> None:
    """Sleep until `time.perf_counter_ns()` reaches `due_ns` (at once if it already has)."""
    now = time.perf_counter_ns
    coarse = due_ns - FINE_NS - now()
    if coarse > 0:
        await asyncio.sleep(coarse / 1e9)
    fine = due_ns - now()
    if fine > 0:
        time.sleep(fine / 1e9)


async def paced(
    due_ns: Sequence[int], start_ns: int, *, min_wake_ns: int = 0
) -> AsyncGenerator[tuple[int, int, int], None]:
    """Release pieces as they fall due, in order.

    Args:
        due_ns: When each piece is due, in ns from `start_ns`; never decreasing.
        start_ns: The `time.perf_counter_ns()` the offsets count from.
        min_wake_ns: Pieces due less than this after the previous release's last piece wait
            and go with a later one (0: every piece is released at its own time).

    Yields:
        `(first, stop, t_ns)`: pieces `first` to `stop - 1` are due by `t_ns`, the clock reading
        taken on waking, which is when they are released.
    """
    now = time.perf_counter_ns
    count = len(due_ns)
    sent = 0
    while sent < count:
        target = sent
        if sent > 0 and min_wake_ns > 0:
            # Hold on until the piece due at least one wake interval after the last one sent.
            floor = due_ns[sent - 1] + min_wake_ns
            while target < count - 1 and due_ns[target] < floor:
                target += 1
        await sleep_until(start_ns + due_ns[target])
        t_ns = now()
        elapsed = t_ns - start_ns
        ready = target + 1
        # Every piece whose time has come goes now.
        while ready < count and due_ns[ready] <= elapsed:
            ready += 1
        yield sent, ready, t_ns
        sent = ready
