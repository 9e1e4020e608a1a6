"""Speak a reply while it is still streaming.

Reply text is split into pieces as it arrives; each piece is synthesized on one worker thread (so
pieces are spoken in order, and the next one is synthesized while the previous one plays) and
queued on the speaker. The caller only ever splits text and hands work over, so `feed` never
blocks on synthesis or audio. The worker thread exists only while there is work, so a speaker per
reply costs no lingering thread.

A reply is the text fed between two `finish()` calls. `stop()` (barge-in) silences the reply being
spoken and ignores the rest of it until `finish()`; the next reply speaks normally.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from demo.voice.playback import Speaker
from demo.voice.sentences import SentenceSplitter
from demo.voice.tts import Synthesizer

log = logging.getLogger(__name__)


class _Reply:
    """Per-reply state shared with the audio thread: whether its first audio has been reported."""

    __slots__ = ("heard", "on_first_audio")

    def __init__(self, on_first_audio: Callable[[int], None] | None) -> None:
        self.heard = False
        self.on_first_audio = on_first_audio

    def first_audio(self, t_ns: int) -> None:
        # Called from the audio thread for every sentence of the reply; only the first counts.
        if not self.heard:
            self.heard = True
            if self.on_first_audio is not None:
                self.on_first_audio(t_ns)


class ReplySpeaker:
    """Turns a streaming reply into speech, sentence by sentence, as early as possible.

    Args:
        synthesizer: started (or startable) text-to-speech.
        speaker: where the speech plays.
        on_sentence: called as `(index, text, t_ns)` in the thread that calls `feed`/`finish` when
            a piece of the reply is ready to be spoken; `index` counts from 0 in each reply and
            `t_ns` is `time.perf_counter_ns()` when the splitter produced it.
        on_first_audio: called with `time.perf_counter_ns()` from the audio thread when the first
            audible sample of each reply is handed to the audio device.
        on_error: called from the worker thread when a piece could not be synthesized or played;
            such failures are otherwise only logged.
        splitter: how replies are cut into pieces; a fresh default one if None.
    """

    def __init__(
        self,
        synthesizer: Synthesizer,
        speaker: Speaker,
        *,
        on_sentence: Callable[[int, str, int], None] | None = None,
        on_first_audio: Callable[[int], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        splitter: SentenceSplitter | None = None,
    ) -> None:
        self._synthesizer = synthesizer
        self._speaker = speaker
        self._on_sentence = on_sentence
        self._on_first_audio = on_first_audio
        self._on_error = on_error
        self._splitter = splitter or SentenceSplitter()
        self._lock = threading.Lock()
        """Guards the reply state below (the splitter, the index, the flags)."""
        self._play_lock = threading.Lock()
        """Makes "still wanted? then play" atomic against `stop()`."""
        self._jobs: collections.deque[tuple[int, _Reply, str]] = collections.deque()
        self._jobs_changed = threading.Condition()
        """Guards `_jobs` and `_working`; notified when the worker goes idle."""
        self._working = False
        self._generation = 0
        """Bumped by `stop()`: work queued under an older generation is dropped."""
        self._reply = _Reply(on_first_audio)
        self._index = 0
        self._open = False
        """Whether text has been fed since the last `finish()`."""
        self._silenced = False
        """The open reply was stopped: the rest of it is ignored."""
        self._muted = False

    @property
    def muted(self) -> bool:
        """When muted nothing is synthesized or played (pieces are still reported)."""
        return self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        self._muted = value
        if value:
            self._cancel()

    def feed(self, text: str) -> None:
        """Reply text as it arrives. Returns at once."""
        with self._lock:
            if self._silenced:
                return
            self._open = True
            ready = self._queue(self._splitter.feed(text))
        self._report(ready)

    def finish(self) -> None:
        """End of the reply: speak what is left. The next `feed` starts a new reply."""
        with self._lock:
            ready = self._queue([] if self._silenced else self._splitter.flush())
            self._reply = _Reply(self._on_first_audio)
            self._index = 0
            self._open = False
            self._silenced = False
        self._report(ready)

    def stop(self) -> None:
        """Barge-in: stop playback now, drop pending pieces and ignore the rest of this reply."""
        with self._lock:
            if self._open:
                self._silenced = True
                self._splitter.flush()
        self._cancel()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every piece so far has been synthesized and queued on the speaker.

        The speaker may still be playing the last of them (see `Speaker.playing`). Returns False
        on timeout.
        """
        with self._jobs_changed:
            return self._jobs_changed.wait_for(
                lambda: not self._jobs and not self._working, timeout
            )

    def close(self) -> None:
        """Stop speaking and let the worker finish (the synthesizer and speaker stay open)."""
        self.stop()
        self.wait_idle(timeout=5)

    def _cancel(self) -> None:
        with self._play_lock:
            self._generation += 1
            self._speaker.stop()
        with self._jobs_changed:
            self._jobs.clear()
            self._jobs_changed.notify_all()

    def _queue(self, pieces: list[str]) -> list[tuple[int, str, int]]:
        """Hand pieces to the worker (the reply lock is held); return them for reporting."""
        if not pieces:
            return []
        now_ns = time.perf_counter_ns()
        ready: list[tuple[int, str, int]] = []
        for text in pieces:
            ready.append((self._index, text, now_ns))
            self._index += 1
        if not self._muted:
            with self._jobs_changed:
                self._jobs.extend((self._generation, self._reply, text) for text in pieces)
                if not self._working:
                    self._working = True
                    threading.Thread(target=self._work, name="reply-speech", daemon=True).start()
        return ready

    def _report(self, ready: list[tuple[int, str, int]]) -> None:
        if self._on_sentence is None:
            return
        for index, text, t_ns in ready:
            self._on_sentence(index, text, t_ns)

    def _work(self) -> None:
        """Synthesize and queue pieces in order until there are none left, then end."""
        while True:
            with self._jobs_changed:
                if not self._jobs:
                    self._working = False
                    self._jobs_changed.notify_all()
                    return
                generation, reply, text = self._jobs.popleft()
            self._speak(generation, reply, text)

    def _speak(self, generation: int, reply: _Reply, text: str) -> None:
        if generation != self._generation or self._muted:
            return
        try:
            speech = self._synthesizer.synthesize(text)
            with self._play_lock:
                if generation != self._generation or self._muted:
                    return
                self._speaker.play(speech, on_first_audio=reply.first_audio)
        except Exception as error:
            log.warning("could not speak %r: %s", text[:40], error)
            if self._on_error is not None:
                self._on_error(error)
