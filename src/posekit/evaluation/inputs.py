"""Evaluation inputs as numpy arrays: ground truth, predictions and the frames to score.

COCO files are read once (orjson) and turned into flat arrays; nothing downstream
walks the annotation dicts again, and the caller's dicts are never modified. The
rules for filling missing fields are those pycocotools needs (and that posekit has
always applied): ``num_keypoints`` = count of labeled points, ``bbox`` = labeled
keypoint extent, ``area`` = box area, ``iscrowd`` = 0.

Video ground truth (PoseTrack style: images with ``vid_id``/``video_id``/``frame_id``/
``is_labeled``) is scored on its labeled frames only: a frame counts when
``is_labeled`` is true, or, without that flag, when it has an annotation of the
evaluated category. Predictions on the other frames, or on images the ground truth
does not have, are dropped and counted (a video is predicted on every frame but
labeled on a few). For image ground truth an unknown image stays an error.
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import orjson

log = logging.getLogger(__name__)

#: Image fields that mark a ground truth as video frames (PoseTrack18 and posekit's export).
VIDEO_IMAGE_FIELDS = ("vid_id", "video_id", "frame_id", "is_labeled")


class EvaluationInputError(ValueError):
    """Raised for inputs that cannot be evaluated (re-raised as ``EvaluationError``)."""


def load_json(source: Any, what: str) -> Any:
    """A path (read with orjson) or an already-loaded object (returned as is, not copied)."""
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise EvaluationInputError(f"{what}: cannot read {path}: {exc}") from None
        try:
            with _gc_paused():
                return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EvaluationInputError(f"{what}: {path} is not valid JSON: {exc}") from None
    return source


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a large JSON file becomes objects: parsing makes
    10^5-10^6 containers and no cycles, and the collector would walk them repeatedly."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def file_key(file_name: Any) -> str:
    """A file name as a normalised POSIX path (``a\\b``, ``a//b``, ``./a/b`` all read ``a/b``)."""
    name = str(file_name).replace("\\", "/")
    # PurePosixPath only changes names with empty or "." parts; it is slow on 10^5 names
    if not name or "//" in name or name.endswith("/") or "." in name.split("/"):
        return str(PurePosixPath(name))
    return name


def _basename(key: str) -> str:
    return key.rpartition("/")[2]


@dataclass
class GroundTruthArrays:
    """The evaluated ground truth. ``G`` annotations of the category on scored images,
    ``K`` keypoints, ``I`` scored images (in COCOeval's order: sorted ids).

    Attributes:
        image_ids: (I,) the ground truth's image ids, sorted.
        keypoints: (G, K, 3) float64 x, y, visibility.
        area: (G,) float64 object area (the OKS scale).
        bbox: (G, 4) float64 x, y, w, h (the crowd / no-keypoint region).
        iscrowd: (G,) bool.
        num_keypoints: (G,) int64 as stated in the file (COCOeval ignores 0).
        image_index: (G,) int64 index into ``image_ids``; annotations are in file order.
        id_to_index: ground-truth image id -> index, scored images only.
        skipped_ids: ids of video frames that are not labeled (not scored).
        is_video: the ground truth is video frames (unknown images are dropped, not refused).
        images: the ground truth's image records (for matching by file name).
    """

    image_ids: list[Any]
    keypoints: np.ndarray
    area: np.ndarray
    bbox: np.ndarray
    iscrowd: np.ndarray
    num_keypoints: np.ndarray
    image_index: np.ndarray
    id_to_index: dict[Any, int]
    skipped_ids: set[Any]
    is_video: bool
    images: Sequence[Mapping[str, Any]] = ()

    @cached_property
    def file_to_index(self) -> dict[str, int]:
        """Normalised ``file_name`` -> index, scored images only."""
        return {
            file_key(img.get("file_name", "")): self.id_to_index[img["id"]]
            for img in self.images
            if img.get("id") in self.id_to_index
        }

    @cached_property
    def skipped_files(self) -> set[str]:
        """Normalised file names of the video frames that are not labeled."""
        return {
            file_key(img.get("file_name", ""))
            for img in self.images
            if img.get("id") in self.skipped_ids
        }

    @cached_property
    def basename_to_ids(self) -> dict[str, list[Any]]:
        """Bare file name -> every image id with it (all images)."""
        out: dict[str, list[Any]] = {}
        for img in self.images:
            out.setdefault(_basename(file_key(img.get("file_name", ""))), []).append(img["id"])
        return out

    @property
    def ignore(self) -> np.ndarray:
        """(G,) bool: COCOeval's ``ignore`` for keypoints (crowd, or no labeled point)."""
        return self.iscrowd | (self.num_keypoints == 0)


@dataclass
class PredictionArrays:
    """Predictions on scored images, in input order.

    Attributes:
        keypoints: (D, K, 3) float64 in ground-truth keypoint order.
        score: (D,) float64.
        image_index: (D,) int64 index into ``GroundTruthArrays.image_ids``.
        dropped_unlabeled: predictions on video frames that are not labeled.
        dropped_unknown: predictions on images the (video) ground truth does not have.
    """

    keypoints: np.ndarray
    score: np.ndarray
    image_index: np.ndarray
    dropped_unlabeled: int = 0
    dropped_unknown: int = 0


def _float_rows(rows: list[Any], width: int, what: str, label: str) -> np.ndarray:
    """(N, width) float64 from equal-length number lists; a clear error naming the first bad one."""
    try:
        if sum(map(len, rows)) == len(rows) * width:
            flat = np.fromiter(chain.from_iterable(rows), np.float64, count=len(rows) * width)
            return flat.reshape(len(rows), width)
    except (TypeError, ValueError):
        pass
    for i, row in enumerate(rows):
        try:
            values = np.asarray(row, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise EvaluationInputError(f"{what}: {label(i)} has non-numeric keypoints") from None
        if values.shape[0] != width:
            raise EvaluationInputError(
                f"{what}: {label(i)} has {values.shape[0]} keypoint values, expected "
                f"{width} ({width // 3} keypoints x 3)"
            )
    raise EvaluationInputError(f"{what}: keypoints are not a list of numbers")


def _is_video(images: Sequence[Mapping[str, Any]]) -> bool:
    return any(field in img for img in images for field in VIDEO_IMAGE_FIELDS)


def ground_truth_arrays(gt: Mapping[str, Any], category_id: Any, k: int) -> GroundTruthArrays:
    """Arrays of the annotations of ``category_id`` with ``k`` keypoints; fills missing
    fields as pycocotools needs them and checks keypoint lengths."""
    if not isinstance(gt, Mapping) or "images" not in gt or "annotations" not in gt:
        raise EvaluationInputError(
            "ground truth: expected a COCO dict with 'images' and 'annotations'"
        )
    images = gt["images"]
    anns = [a for a in gt["annotations"] if a.get("category_id") == category_id]
    for a in anns:
        if a.get("keypoints") is None:
            raise EvaluationInputError(f"ground truth: annotation {a.get('id')} has no 'keypoints'")
    is_video = _is_video(images)
    annotated = {a.get("image_id") for a in anns}
    if is_video:
        skipped_ids = {img["id"] for img in images if not _frame_is_labeled(img, annotated)}
        image_ids = sorted({img["id"] for img in images} - skipped_ids)
    else:
        skipped_ids = set()
        image_ids = sorted({img["id"] for img in images})
    id_to_index = {image_id: i for i, image_id in enumerate(image_ids)}

    anns = [a for a in anns if a.get("image_id") in id_to_index]
    kps = _float_rows(
        [a["keypoints"] for a in anns],
        3 * k,
        "ground truth",
        lambda i: f"annotation {anns[i].get('id')}",
    ).reshape(len(anns), k, 3)
    labeled = kps[:, :, 2] > 0
    stated = [a.get("num_keypoints") for a in anns]
    num_keypoints = np.array(
        [int(n) if n is not None else -1 for n in stated], dtype=np.int64
    ).reshape(-1)
    missing = num_keypoints < 0
    num_keypoints[missing] = np.count_nonzero(labeled[missing], axis=1)

    bbox = np.zeros((len(anns), 4), dtype=np.float64)
    has_box = np.array(["bbox" in a for a in anns], dtype=bool)
    if has_box.any():
        bbox[has_box] = _float_rows(
            [a["bbox"] for a in anns if "bbox" in a], 4, "ground truth", lambda i: "a 'bbox'"
        )
    for i in np.flatnonzero(~has_box & labeled.any(axis=1)):
        pts = kps[i, labeled[i], :2]
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        bbox[i] = (x0, y0, x1 - x0, y1 - y0)
    areas = [a.get("area") for a in anns]
    area = np.array([float(v) if v is not None else np.nan for v in areas], dtype=np.float64)
    no_area = np.isnan(area)
    area[no_area] = bbox[no_area, 2] * bbox[no_area, 3]
    iscrowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    image_index = np.array([id_to_index[a["image_id"]] for a in anns], dtype=np.int64)
    return GroundTruthArrays(
        image_ids=image_ids,
        keypoints=kps,
        area=area,
        bbox=bbox,
        iscrowd=iscrowd.reshape(-1),
        num_keypoints=num_keypoints,
        image_index=image_index.reshape(-1),
        id_to_index=id_to_index,
        skipped_ids=skipped_ids,
        is_video=is_video,
        images=images,
    )


def _frame_is_labeled(img: Mapping[str, Any], annotated: set[Any]) -> bool:
    if "is_labeled" in img:
        return bool(img["is_labeled"])
    return img.get("id") in annotated


#: One derived point: its terms (each a tuple of prediction keypoint positions standing
#: for their mean) and the terms' weights.
DerivedTerms = tuple[tuple[tuple[int, ...], ...], tuple[float, ...]]


@dataclass(frozen=True)
class KeypointMap:
    """How prediction keypoints become ground-truth keypoints.

    Attributes:
        index: ``(K,) int64`` for each ground-truth keypoint, its position among the
            ``M`` prediction keypoints, or ``M + d`` for the ``d``-th derived point,
            or -1 (not predicted: scored as a miss).
        derived: one entry per derived point: its terms, each a tuple of prediction
            keypoint positions standing for their mean, and the terms' weights (an
            affine combination, :class:`posekit.skeleton.derived.DerivedKeypoint`).
    """

    index: np.ndarray
    derived: tuple[DerivedTerms, ...] = ()


def _derived_points(kps: np.ndarray, derived: Sequence[DerivedTerms]) -> np.ndarray:
    """``(D, P, 3)`` derived points of ``(D, M, 3)`` predictions.

    A term is the mean of its *labeled* points (a prediction that leaves out the
    hidden ear of a face in profile still has a head); a derived point whose term has
    no labeled point is not labeled (0, 0, 0). Its visibility is the lowest of the
    points it used (2 only when all were visible)."""
    out = np.zeros((kps.shape[0], len(derived), 3), np.float64)
    for p, (terms, weights) in enumerate(derived):
        xy = np.zeros((kps.shape[0], 2), np.float64)
        vis = np.full(kps.shape[0], np.inf)
        ok = np.ones(kps.shape[0], bool)
        for positions, weight in zip(terms, weights):
            group = kps[:, list(positions), :]  # (D, n, 3)
            labeled = group[:, :, 2] > 0
            count = labeled.sum(axis=1)
            ok &= count > 0
            mean = (group[:, :, :2] * labeled[:, :, None]).sum(axis=1) / np.maximum(count, 1)[
                :, None
            ]
            xy += weight * mean
            vis = np.minimum(vis, np.where(labeled, group[:, :, 2], np.inf).min(axis=1))
        out[ok, p, :2] = xy[ok]
        out[ok, p, 2] = vis[ok]
    return out


def _reorder_keypoints(kps: np.ndarray, mapping: KeypointMap) -> np.ndarray:
    """(D, M, 3) prediction keypoints -> (D, K, 3) in ground-truth order (derived points
    computed); -1: (0, 0, 0)."""
    reorder = mapping.index
    if mapping.derived:
        kps = np.concatenate([kps, _derived_points(kps, mapping.derived)], axis=1)
    out = kps[:, np.maximum(reorder, 0), :]
    out[:, reorder < 0, :] = 0.0
    return out


def prediction_arrays(
    predictions: Any,
    gt: GroundTruthArrays,
    k: int,
    name_reorder: Any,
) -> PredictionArrays:
    """Predictions (a COCO dict matched by ``file_name``, or a results list on the ground
    truth's ids) as arrays on the scored images.

    ``name_reorder(pred_names)`` returns a :class:`KeypointMap` (for each ground-truth
    keypoint, the prediction keypoint of the same name, a point derived from the
    prediction's keypoints, or -1), or ``None`` when the orders already agree.
    """
    dropped_unlabeled = dropped_unknown = 0
    reorder: KeypointMap | None = None
    pred_names: list[Any] = []
    if isinstance(predictions, Mapping):
        if "annotations" not in predictions:
            raise EvaluationInputError("predictions: a dict must be a COCO file with 'annotations'")
        # prediction image id -> ground-truth index; -1: unlabeled frame, -2: unknown image
        id_map: dict[Any, int] = {}
        pred_images = predictions.get("images", [])
        keys = [file_key(img.get("file_name", "")) for img in pred_images]
        pred_basenames = Counter(_basename(key) for key in keys)
        for img, key in zip(pred_images, keys):
            if key in gt.file_to_index:
                id_map[img["id"]] = gt.file_to_index[key]
                continue
            if key in gt.skipped_files:
                id_map[img["id"]] = -1
                continue
            # written with another folder prefix: the bare file name, where it is unique in
            # both files (video frames share bare names like 000000.jpg across videos)
            name = _basename(key)
            candidates = gt.basename_to_ids.get(name, []) if pred_basenames[name] == 1 else []
            if len(candidates) == 1 and candidates[0] in gt.id_to_index:
                id_map[img["id"]] = gt.id_to_index[candidates[0]]
            elif len(candidates) == 1 and candidates[0] in gt.skipped_ids:
                id_map[img["id"]] = -1
            elif gt.is_video:
                id_map[img["id"]] = -2
            else:
                raise EvaluationInputError(
                    f"predictions: image {img.get('file_name')!r} (id {img.get('id')}) is not "
                    "in the ground truth (images are matched by file_name)"
                )
        pred_cats = [c for c in predictions.get("categories") or [] if c.get("keypoints")]
        if len(pred_cats) > 1:
            raise EvaluationInputError(
                f"predictions: several keypoint categories ({[c.get('id') for c in pred_cats]});"
                " give one category per evaluation"
            )
        pred_cat = pred_cats[0] if pred_cats else {}
        pred_names = pred_cat.get("keypoints") or []
        if pred_names:
            reorder = name_reorder(pred_names)
        entries = predictions["annotations"]
        if pred_cat:
            cat = pred_cat["id"]
            entries = [a for a in entries if a.get("category_id", cat) == cat]
        index = []
        for a in entries:
            try:
                image_id = a["image_id"]
            except (KeyError, TypeError):
                raise EvaluationInputError(
                    f"predictions: annotation {_ann_id(a)} needs 'image_id' and 'keypoints'"
                ) from None
            if image_id not in id_map:
                raise EvaluationInputError(
                    f"predictions: annotation {_ann_id(a)} refers to image id "
                    f"{image_id!r}, which is not in the predictions' 'images'"
                )
            index.append(id_map[image_id])
    elif isinstance(predictions, Sequence) and not isinstance(predictions, str | bytes):
        entries = predictions
        index = []
        for i, a in enumerate(entries):
            if not isinstance(a, Mapping) or "keypoints" not in a or "image_id" not in a:
                raise EvaluationInputError(
                    f"predictions: entry #{i} needs 'image_id' and 'keypoints'"
                )
            image_id = a["image_id"]
            found = gt.id_to_index.get(image_id)
            if found is not None:
                index.append(found)
            elif image_id in gt.skipped_ids:
                index.append(-1)
            elif gt.is_video:
                index.append(-2)
            else:
                raise EvaluationInputError(
                    f"predictions: entry #{i} has image_id {image_id!r}, which is not a "
                    "ground-truth image id (results lists must use the ground truth's ids)"
                )
    else:
        raise EvaluationInputError(
            "predictions: expected a COCO dict, a COCO results list, or a path to either"
        )

    image_index = np.array(index, dtype=np.int64).reshape(-1)
    dropped_unlabeled = int(np.count_nonzero(image_index == -1))
    dropped_unknown = int(np.count_nonzero(image_index == -2))
    if dropped_unlabeled or dropped_unknown:
        keep = image_index >= 0
        entries = [a for a, kept in zip(entries, keep.tolist()) if kept]
        image_index = image_index[keep]
    for i, a in enumerate(entries):
        if not isinstance(a, Mapping) or "keypoints" not in a:
            raise EvaluationInputError(f"predictions: entry #{i} needs 'image_id' and 'keypoints'")
    width = 3 * (len(pred_names) if reorder is not None else k)
    kps = _float_rows(
        [a["keypoints"] for a in entries], width, "predictions", lambda i: f"entry #{i}"
    ).reshape(len(entries), width // 3, 3)
    if reorder is not None:
        kps = _reorder_keypoints(kps, reorder)
    if kps.shape[1] != k:
        raise EvaluationInputError(
            f"predictions: entries have {3 * kps.shape[1]} keypoint values, expected "
            f"{3 * k} ({k} keypoints x 3)"
        )
    finite = np.isfinite(kps).all(axis=(1, 2))
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise EvaluationInputError(f"predictions: entry #{bad} has non-finite keypoint values")
    raw_scores = [a.get("score") for a in entries]
    unscored = sum(1 for s in raw_scores if s is None)
    if unscored:
        log.warning("%d predictions have no 'score'; they are scored 1.0", unscored)
        raw_scores = [1.0 if s is None else s for s in raw_scores]
    try:
        score = np.array(raw_scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise EvaluationInputError("predictions: every 'score' must be a number") from None
    if not np.isfinite(score).all():
        bad = int(np.flatnonzero(~np.isfinite(score))[0])
        raise EvaluationInputError(f"predictions: entry #{bad} has a non-finite score")
    if dropped_unlabeled:
        log.info(
            "ignored %d predictions on video frames that are not labeled in the ground truth",
            dropped_unlabeled,
        )
    if dropped_unknown:
        log.warning(
            "ignored %d predictions on images that are not in the (video) ground truth",
            dropped_unknown,
        )
    return PredictionArrays(
        keypoints=kps,
        score=score,
        image_index=image_index,
        dropped_unlabeled=dropped_unlabeled,
        dropped_unknown=dropped_unknown,
    )


def _ann_id(ann: Any) -> Any:
    return ann.get("id") if isinstance(ann, Mapping) else None
