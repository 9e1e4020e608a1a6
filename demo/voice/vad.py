"""Voice activity detection, streamed, with the Silero VAD model that faster-whisper ships.

faster-whisper runs the model over a whole file at once (`faster_whisper.vad`); a live turn needs
it frame by frame. Each 512-sample frame (32 ms at 16 kHz) goes through the model with the last
64 samples of the previous frame in front of it and the model's recurrent state carried over,
which is exactly what the whole-file pass does between frames, so the probabilities are the same
(the tests check it). A frame costs about a quarter of a millisecond of one core.

The model file is found beside the installed faster-whisper without importing it (that import
takes a second and pulls in CTranslate2); only onnxruntime is loaded, once per process.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FRAME = 512
"""Samples per model step at 16 kHz, the only frame size the 16 kHz model accepts."""

CONTEXT = 64
"""Samples of the previous frame the model sees in front of each frame."""

STATE_SHAPE = (1, 1, 128)

MODEL_FILE = "silero_vad_v6.onnx"


class VadUnavailable(Exception):
    """Voice activity detection cannot run here; the message says what is missing."""


def model_path() -> Path:
    """The Silero model file inside the installed faster-whisper package.

    Raises:
        VadUnavailable: faster-whisper is missing, or too old to ship this model.
    """
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise VadUnavailable("faster-whisper is not installed: pip install faster-whisper")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / MODEL_FILE
    if not path.is_file():
        raise VadUnavailable(
            f"this faster-whisper does not ship {MODEL_FILE}: pip install 'faster-whisper>=1.2'"
        )
    return path


_session_lock = threading.Lock()
_shared_session: Any = None


def _session() -> Any:
    """The process-wide model session, loaded on first use (not cached if loading fails)."""
    global _shared_session
    with _session_lock:
        if _shared_session is None:
            _shared_session = _load_session()
        return _shared_session


def _load_session() -> Any:
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError as error:
        raise VadUnavailable(
            f"onnxruntime is not installed ({error}): pip install onnxruntime"
        ) from error
    options = onnxruntime.SessionOptions()
    # One frame is tiny: threads would cost more in hand-offs than they save, and would compete
    # with the speech-to-text decoder for the same cores.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    session = onnxruntime.InferenceSession(
        str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )
    names = {tensor.name for tensor in session.get_inputs()}
    if names != {"input", "h", "c"}:
        raise VadUnavailable(
            f"unexpected Silero VAD model inputs {sorted(names)}: pip install 'faster-whisper>=1.2'"
        )
    return session


def preload() -> None:
    """Load the model now (it takes a few hundred milliseconds the first time), off the UI.

    Raises:
        VadUnavailable: see `model_path` and `Vad`.
    """
    _session()


class Vad:
    """A streaming speech detector: feed audio in order, read the probability of speech.

    One instance follows one audio stream; it is not thread-safe (its owner serialises calls).
    The model itself is shared by every instance in the process.

    Raises:
        VadUnavailable: onnxruntime or the model file is missing.
    """

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self._session = _session()
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._last = 0.0

    def reset(self) -> None:
        """Forget the stream so far (a new microphone session starts from silence)."""
        np = self._np
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._last = 0.0

    def speech_probability(self, block: npt.NDArray[np.float32]) -> float:
        """The probability (0–1) that the latest complete frame holds speech.

        Blocks of any length are accepted: samples are gathered into 512-sample frames, and a
        block that completes no frame returns the previous frame's probability.
        """
        probabilities = self.frame_probabilities(block)
        if probabilities:
            self._last = probabilities[-1]
        return self._last

    def frame_probabilities(self, block: npt.NDArray[np.float32]) -> list[float]:
        """One probability per frame this block completes (none if it completes none)."""
        np = self._np
        samples = np.asarray(block, dtype=np.float32).reshape(-1)
        if self._pending.size:
            samples = np.concatenate([self._pending, samples])
        count = samples.size // FRAME
        self._pending = samples[count * FRAME :].copy()
        if count == 0:
            return []
        frames = samples[: count * FRAME].reshape(count, FRAME)
        # Each row is a frame with the 64 samples before it; the model steps its recurrent
        # state through the rows in order, as it does over a whole file.
        previous = np.concatenate([self._context[None, :], frames[:-1, -CONTEXT:]])
        rows = np.ascontiguousarray(np.concatenate([previous, frames], axis=1))
        output, self._h, self._c = self._session.run(
            None, {"input": rows, "h": self._h, "c": self._c}
        )
        self._context = frames[-1, -CONTEXT:].copy()
        probabilities = [float(p) for p in np.asarray(output).reshape(-1)]
        self._last = probabilities[-1]
        return probabilities
