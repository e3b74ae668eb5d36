"""BlazePose model files, constants and the TFLite runtime.

The ``.tflite`` files ship inside the ``mediapipe==0.10.21`` wheel. They are read
from ``$POSEKIT_BLAZEPOSE_DIR``, the posekit cache (filled by ``posekit models fetch
blazepose`` or on first use: :mod:`posekit.models.blazepose.model_files`), or an
installed mediapipe (found without importing it), and run with ``ai-edge-litert``,
imported only when a model is created.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from posekit.models.base import ModelError

__all__ = [
    "BLAZEPOSE_KEYPOINTS",
    "DETECTOR_SIZE",
    "ENV_MODEL_DIR",
    "INSTALL_HINT",
    "LANDMARK_SIZE",
    "NUM_LANDMARKS",
    "ROI_ENLARGE",
    "TfliteModel",
    "default_threads",
    "find_model_dir",
    "load_interpreter",
    "sigmoid",
]

#: Landmark names in model output order (the ``mediapipe33`` preset).
BLAZEPOSE_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip

DETECTOR_FILE = "pose_detection.tflite"
LANDMARK_FILE = "pose_landmark_full.tflite"
INSTALL_HINT = "pip install 'posekit[mediapipe]'"
ENV_MODEL_DIR = "POSEKIT_BLAZEPOSE_DIR"

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
NUM_LANDMARKS = 39  # 33 body landmarks + auxiliary points (33: hip centre, 34: scale point)
#: Side of the alignment ROI relative to twice the centre->scale-point distance
#: (RectTransformationCalculator scale 1.25 in pose_detection_to_roi / landmarks_to_roi).
ROI_ENLARGE = 1.25


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, clipped so that large logits do not overflow."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


# ----------------------------------------------------------------------------- files
def find_model_dir(model_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Paths of the detector and landmark ``.tflite`` files.

    Looks in ``model_dir`` (or ``$POSEKIT_BLAZEPOSE_DIR``) first, accepting either a flat
    folder with both files or a MediaPipe-style ``modules/pose_*/`` tree; otherwise in the
    installed ``mediapipe`` package, found without importing it (importing mediapipe takes
    seconds and pulls in protobuf/matplotlib).

    Raises:
        ModelError: the files are not there; the message names the folder searched.
    """
    explicit = model_dir if model_dir is not None else os.environ.get(ENV_MODEL_DIR)
    if explicit:
        root = Path(explicit)
        candidates = [
            (root / DETECTOR_FILE, root / LANDMARK_FILE),
            (
                root / "modules" / "pose_detection" / DETECTOR_FILE,
                root / "modules" / "pose_landmark" / LANDMARK_FILE,
            ),
        ]
        for det, lmk in candidates:
            if det.is_file() and lmk.is_file():
                return det, lmk
        raise ModelError(
            f"BlazePose model files not found in {root}: expected {DETECTOR_FILE} and "
            f"{LANDMARK_FILE} there (or under modules/pose_detection and "
            "modules/pose_landmark)"
        )
    from posekit.models.blazepose import model_files

    cached = model_files.cached_model_files()
    if cached is not None:
        return cached / DETECTOR_FILE, cached / LANDMARK_FILE
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        if os.environ.get("POSEKIT_OFFLINE", "") not in ("", "0"):
            raise ModelError(
                f"the BlazePose model files are not in {model_files.cache_dir()} "
                f"(POSEKIT_OFFLINE is set): run `posekit models fetch blazepose` once, or set "
                f"{ENV_MODEL_DIR} to a folder holding {DETECTOR_FILE} and {LANDMARK_FILE}"
            )
        folder = model_files.fetch_model_files()  # first use: download once, cache
        return folder / DETECTOR_FILE, folder / LANDMARK_FILE
    package = Path(next(iter(spec.submodule_search_locations)))
    det = package / "modules" / "pose_detection" / DETECTOR_FILE
    lmk = package / "modules" / "pose_landmark" / LANDMARK_FILE
    for path in (det, lmk):
        if not path.is_file():
            raise ModelError(
                f"{path} is missing from the installed mediapipe package; install the "
                f"release that ships it: {INSTALL_HINT}"
            )
    return det, lmk


def load_interpreter(path: Path, num_threads: int) -> Any:
    """A TFLite interpreter for ``path`` with its tensors allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ModelError(
            f"running the BlazePose models needs ai-edge-litert: {INSTALL_HINT}"
        ) from None
    try:
        with _native_stderr_filtered():
            interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: cannot load TFLite model: {exc}") from None
    return interpreter


#: Lines the TFLite C++ runtime prints to stderr on every model load (not warnings).
_RUNTIME_CHATTER = ("Created TensorFlow Lite XNNPACK delegate",)


@contextmanager
def _native_stderr_filtered() -> Iterator[None]:
    """Hold back the TFLite runtime's per-load info lines, written by C++ straight to
    file descriptor 2 (no environment variable silences them); anything else it
    prints is passed on."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (captured, embedded)
        fd = 2
    try:
        saved = os.dup(fd)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = [
                line
                for line in text.splitlines(True)
                if not any(chatter in line for chatter in _RUNTIME_CHATTER)
            ]
            if kept:
                os.write(fd, "".join(kept).encode())


def default_threads() -> int:
    """TFLite CPU threads: the cores, at most 4."""
    # TFLite's XNNPACK scales well to the physical cores; more threads than cores
    # only adds contention.
    return max(1, min(4, os.cpu_count() or 1))


_M = TypeVar("_M", bound="TfliteModel")


class TfliteModel:
    """Lifecycle shared by the BlazePose models: one TFLite interpreter, opened once
    (:meth:`_open`), run through :meth:`_invoke` (timed in ``inference_seconds``),
    released by ``close()`` (again allowed); usable as a context manager."""

    _interpreter: Any = None
    _input: int
    device: str
    inference_seconds: float

    def _open(self, path: Path, num_threads: int | None) -> list[dict[str, Any]]:
        """Load the model at ``path``; returns its output details."""
        self._interpreter = load_interpreter(path, num_threads or default_threads())
        self._input = self._interpreter.get_input_details()[0]["index"]
        self.device = "cpu (tflite)"
        #: Seconds spent inside ``interpreter.invoke`` since creation (for benchmarks).
        self.inference_seconds = 0.0
        return list(self._interpreter.get_output_details())

    def _require_open(self) -> Any:
        if self._interpreter is None:
            raise ModelError(f"{type(self).__name__} is closed")
        return self._interpreter

    def _invoke(self, interpreter: Any, tensor: np.ndarray | None) -> None:
        """One forward pass on ``tensor`` (None: on what the input tensor holds);
        read the outputs from ``interpreter``."""
        if tensor is not None:
            interpreter.set_tensor(self._input, tensor)
        start = time.perf_counter()
        interpreter.invoke()
        self.inference_seconds += time.perf_counter() - start

    def _invoke_pixels(
        self, interpreter: Any, pixels: np.ndarray, scale: float, offset: float = 0.0
    ) -> None:
        """One forward pass on one ``(H, W, 3) uint8`` image fed as ``pixels * scale -
        offset``: exactly the float32 values of ``pixels.astype(np.float32) * scale -
        offset``, computed in place in the interpreter's own input tensor (no buffer
        of ours, no copy by ``set_tensor``)."""
        view = interpreter.tensor(self._input)()
        try:
            if view.shape[1:] != pixels.shape:
                raise ValueError(
                    f"{type(self).__name__}: input of shape {pixels.shape}, the model takes "
                    f"{view.shape[1:]}"
                )
            target = view[0]
            np.copyto(target, pixels)  # uint8 -> float32 is exact
            np.multiply(target, np.float32(scale), out=target)
            if offset:
                np.subtract(target, np.float32(offset), out=target)
            del target
        finally:
            del view  # the interpreter refuses to run while a view of it is alive
        self._invoke(interpreter, None)

    @staticmethod
    def _copy_output(interpreter: Any, index: int, out: np.ndarray) -> None:
        """Copy output ``index`` (its batch item 0) straight into ``out`` (one copy;
        ``get_tensor`` would make another)."""
        view = interpreter.tensor(index)()
        try:
            out[...] = view[0]
        finally:
            del view  # the interpreter refuses to run while a view of it is alive

    def close(self) -> None:
        """Release the interpreter."""
        self._interpreter = None

    def __enter__(self: _M) -> _M:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
