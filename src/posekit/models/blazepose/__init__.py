"""BlazePose backend: MediaPipe's pose detector and 33-landmark model on TFLite.

The offline default models. The ``.tflite`` files ship inside the
``mediapipe==0.10.21`` wheel and run with ``ai-edge-litert``; both are imported
only when a model is created (``pip install 'posekit[mediapipe]'``).

The pipeline follows the published MediaPipe graphs
(``mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt``,
``mediapipe/modules/pose_landmark/*.pbtxt``): SSD anchors and decoding of the
224x224 detector, weighted NMS, alignment-point ROIs enlarged 1.25x, the
256x256 landmark model, heatmap refinement and projection back to the image,
then the face points refined by MediaPipe's face landmark model (face mesh) on a
crop of each face (``mediapipe/modules/face_landmark``, same wheel).
Unlike MediaPipe's single-person graph it keeps every detection, so several
people per image are found, and it also builds crops from plain boxes (user,
ground-truth or detector boxes), re-cropping once from the model's own
alignment landmarks.

Example:
    >>> from posekit.models import create_detector, create_pose_estimator
    >>> from posekit.skeleton import get_preset
    >>> detector = create_detector("blazepose")          # doctest: +SKIP
    >>> estimator = create_pose_estimator("blazepose")   # doctest: +SKIP
    >>> dets = detector.detect([image])                  # doctest: +SKIP
    >>> people = estimator.estimate([image], dets, get_preset("coco17"))  # doctest: +SKIP

Modules: :mod:`~.runtime` (model files, constants, TFLite), :mod:`~.detector`
(the person detector), :mod:`~.landmarks` (decoding the landmark model),
:mod:`~.visibility` (which landmarks annotators would leave out), :mod:`~.face`
(the face refinement) and
:mod:`~.estimator` (the pose estimator).
"""

from posekit.models.blazepose.detector import BlazePoseDetector, generate_anchors
from posekit.models.blazepose.estimator import BlazePoseEstimator
from posekit.models.blazepose.face import FaceRefiner, find_face_model
from posekit.models.blazepose.landmarks import refine_with_heatmap
from posekit.models.blazepose.runtime import BLAZEPOSE_KEYPOINTS, find_model_dir

__all__ = [
    "BLAZEPOSE_KEYPOINTS",
    "BlazePoseDetector",
    "BlazePoseEstimator",
    "FaceRefiner",
    "find_face_model",
    "find_model_dir",
    "generate_anchors",
    "refine_with_heatmap",
]
