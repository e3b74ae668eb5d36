"""BlazePose model files, constants and the TFLite runtime.

The ``.tflite`` files ship inside the ``mediapipe==0.10.21`` wheel (found without
importing mediapipe) and run with ``ai-edge-litert``, imported only when a model
is created.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

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
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the BlazePose models need the mediapipe package (which ships them): {INSTALL_HINT}"
            f", or set {ENV_MODEL_DIR} to a folder holding {DETECTOR_FILE} and {LANDMARK_FILE}"
        )
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
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: cannot load TFLite model: {exc}") from None
    return interpreter


def default_threads() -> int:
    """TFLite CPU threads: the cores, at most 4."""
    # TFLite's XNNPACK scales well to the physical cores; more threads than cores
    # only adds contention.
    return max(1, min(4, os.cpu_count() or 1))
