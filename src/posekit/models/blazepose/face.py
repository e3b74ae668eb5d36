"""Face refinement: MediaPipe's face landmark model (face mesh) on the face of each pose.

BlazePose locates the face points (nose, eyes, ears, mouth) from a 256 px crop of the
whole body, where a face is often 10-30 px wide; COCO scores those points with its
smallest sigmas (0.025-0.035), so a few pixels decide whether a point is correct. The
face landmark model (``face_landmark.tflite``, from the same mediapipe wheel) places
468 points on a 192 px crop of the face alone. :class:`FaceRefiner` crops each face
from BlazePose's own face points, runs the mesh twice (the second crop from the
first mesh, as MediaPipe's face tracking re-crops between frames), and returns mesh
positions for the BlazePose face landmarks with the model's face confidence; the
estimator takes them where that confidence is high
(:class:`posekit.models.blazepose.BlazePoseEstimator`, ``face_refine``). The model's
confidence is close to 0 or 1: it finds frontal and three-quarter faces from about
20 px, and no face under helmets, ski goggles, in full profile or from behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from posekit.models.base import ModelError
from posekit.models.blazepose.runtime import TfliteModel, sigmoid
from posekit.models.geometry import crop_rois, crop_to_image, roi_from_alignment_points

__all__ = ["FACE_FILE", "FACE_POINTS", "FaceRefiner", "face_rois"]

FACE_FILE = "face_landmark.tflite"
FACE_SIZE = 192
NUM_FACE_LANDMARKS = 468
#: Side of the face crop relative to the mesh's extent (MediaPipe's face tracking:
#: RectTransformationCalculator scale 1.5 in face_landmark_landmarks_to_roi).
FACE_ENLARGE = 1.5

# Face mesh indices (MediaPipe's canonical 468-point topology; "left" = the subject's).
_RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
_LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
_NOSE_TIP = (4,)  # just above the tip (pronasale, 1): measured a little closer to COCO's nose
_FOREHEAD, _CHIN = 10, 152

#: BlazePose landmark index -> the face mesh points whose mean replaces it.
FACE_POINTS: dict[int, tuple[int, ...]] = {
    0: _NOSE_TIP,  # nose
    1: (362,),  # left_eye_inner
    2: _LEFT_EYE,  # left_eye (centre of the eye contour)
    3: (263,),  # left_eye_outer
    4: (133,),  # right_eye_inner
    5: _RIGHT_EYE,  # right_eye
    6: (33,),  # right_eye_outer
    7: (454,),  # left_ear: the face contour at the tragion
    8: (234,),  # right_ear
    9: (291,),  # mouth_left
    10: (61,),  # mouth_right
}


def face_rois(points33: np.ndarray) -> np.ndarray:
    """Face crops ``(N, 4)`` (centre x, y, side, angle) from BlazePose's face landmarks
    ``(N, >=11, 2)``.

    The crop is centred between the eyes and the mouth, turned so that mouth -> eyes
    points up, with side 1.5 x the face's size, taken as the larger of the ear
    distance and 2.8 x the eye-to-mouth distance (about a face's height; the first is
    small in profile, the second when the face is tilted away).
    """
    p = np.asarray(points33, np.float64).reshape(len(points33), -1, 2)
    if p.shape[1] < 11:
        raise ValueError(f"face_rois needs (N, >=11, 2) BlazePose landmarks, got {p.shape}")
    eyes = (p[:, 2] + p[:, 5]) / 2.0
    mouth = (p[:, 9] + p[:, 10]) / 2.0
    eye_mouth = np.linalg.norm(eyes - mouth, axis=1)
    ears = np.linalg.norm(p[:, 7] - p[:, 8], axis=1)
    size = np.maximum(ears, 2.8 * eye_mouth)
    rois = roi_from_alignment_points(mouth, eyes, 1.0)
    rois[:, 0:2] = (eyes + mouth) / 2.0
    rois[:, 2] = np.maximum(FACE_ENLARGE * size, 4.0)
    return rois


class FaceRefiner(TfliteModel):
    """The face landmark model on face crops.

    Args:
        model_path: ``face_landmark.tflite``.
        passes: mesh runs per face (the second and later from the previous mesh).
        num_threads: TFLite CPU threads.
    """

    def __init__(
        self, model_path: str | os.PathLike[str], *, passes: int = 2, num_threads: int | None = None
    ) -> None:
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        self.passes = int(passes)
        path = Path(model_path)
        details = self._open(path, num_threads)
        outputs = {int(np.prod(d["shape"])): d["index"] for d in details}
        try:
            self._out_mesh = outputs[NUM_FACE_LANDMARKS * 3]
            self._out_flag = outputs[1]
        except KeyError:
            raise ModelError(
                f"{path}: unexpected outputs; expected the face_landmark model "
                "(1404 landmark values and a face flag)"
            ) from None

    def _run(self, image: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        interpreter = self._require_open()
        crops = crop_rois(image, rois, FACE_SIZE)
        mesh = np.empty((len(rois), NUM_FACE_LANDMARKS, 2), np.float32)
        flags = np.empty(len(rois), np.float32)
        for i in range(len(rois)):
            # crop.astype(np.float32) * (1 / 255), through one reused input buffer
            self._invoke_pixels(interpreter, crops[i], 1.0 / 255.0)
            mesh[i] = interpreter.get_tensor(self._out_mesh).reshape(-1, 3)[:, :2]
            flags[i] = interpreter.get_tensor(self._out_flag).reshape(-1)[0]
        return crop_to_image(mesh, rois, FACE_SIZE), sigmoid(flags)

    def mesh(self, image: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 468, 2)`` mesh points in image pixels and ``(N,)`` face confidences
        for face crops ``rois`` (from :func:`face_rois`)."""
        rois = np.asarray(rois, np.float64).copy()
        if len(rois) == 0:
            return np.zeros((0, NUM_FACE_LANDMARKS, 2), np.float32), np.zeros(0, np.float32)
        mesh, conf = self._run(image, rois)
        for _ in range(self.passes - 1):
            rois = _rois_from_mesh(mesh)
            mesh, conf = self._run(image, rois)
        return mesh, conf

    def face_points(self, image: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mesh positions ``(N, len(FACE_POINTS), 2)`` of the BlazePose face landmarks
        listed in :data:`FACE_POINTS` (in that order) and ``(N,)`` face confidences."""
        mesh, conf = self.mesh(image, rois)
        out = np.stack([mesh[:, list(idx)].mean(axis=1) for idx in FACE_POINTS.values()], axis=1)
        return out.astype(np.float32), conf


def _rois_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """Face crops from a mesh: turned so chin -> forehead points up, centred on the
    mesh's extent in that frame, side 1.5 x its longer side."""
    mesh = np.asarray(mesh, np.float64)
    rois = roi_from_alignment_points(mesh[:, _CHIN], mesh[:, _FOREHEAD], 1.0)
    angle = rois[:, 3]
    cos_a, sin_a = np.cos(angle)[:, None], np.sin(angle)[:, None]
    # into the crop frame (the inverse rotation of crop_to_image)
    u = cos_a * mesh[..., 0] + sin_a * mesh[..., 1]
    v = -sin_a * mesh[..., 0] + cos_a * mesh[..., 1]
    cu = (u.min(axis=1) + u.max(axis=1)) / 2.0
    cv = (v.min(axis=1) + v.max(axis=1)) / 2.0
    side = np.maximum(u.max(axis=1) - u.min(axis=1), v.max(axis=1) - v.min(axis=1))
    rois[:, 0] = cos_a[:, 0] * cu - sin_a[:, 0] * cv
    rois[:, 1] = sin_a[:, 0] * cu + cos_a[:, 0] * cv
    rois[:, 2] = np.maximum(FACE_ENLARGE * side, 4.0)
    return rois


def find_face_model(model_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``face_landmark.tflite``.

    Looked for in ``model_dir`` (or ``$POSEKIT_BLAZEPOSE_DIR``; flat, or under
    ``modules/face_landmark/``), then in the posekit cache, then in an installed
    mediapipe package; if it is in none of them it is fetched into the cache from the
    mediapipe wheel (:func:`~.model_files.fetch_model_files`, SHA-256 checked) unless
    ``POSEKIT_OFFLINE`` is set.

    Raises:
        ModelError: not found and not fetched; the message says how to get it or to
            turn the refinement off.
    """
    import importlib.util

    from posekit.models.blazepose import model_files
    from posekit.models.blazepose.runtime import ENV_MODEL_DIR

    explicit = model_dir if model_dir is not None else os.environ.get(ENV_MODEL_DIR)
    places = []
    if explicit:
        root = Path(explicit)
        places += [root / FACE_FILE, root / "modules" / "face_landmark" / FACE_FILE]
    places.append(model_files.cache_dir() / FACE_FILE)
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        places.append(package / "modules" / "face_landmark" / FACE_FILE)
    for path in places:
        if path.is_file():
            return path
    if os.environ.get("POSEKIT_OFFLINE", "") not in ("", "0"):
        raise ModelError(
            f"{FACE_FILE} (BlazePose's face refinement) is not in "
            f"{', '.join(str(p.parent) for p in places)} and POSEKIT_OFFLINE is set: run "
            "`posekit models fetch blazepose` once, copy the file into one of those "
            "folders, or turn the refinement off (pose option face_refine=false)"
        )
    folder = model_files.fetch_model_files(names=model_files.ALL_MODEL_FILES)
    return folder / FACE_FILE
