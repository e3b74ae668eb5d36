"""Per-annotation fields of a COCO file whose whole-array checks passed
(:func:`posekit.formats.coco_read.prepare_coco`), built chunk by chunk.

:class:`CocoRows` holds the validated arrays of a file (keypoints, visibility,
boxes) and the parsed annotations; :meth:`CocoRows.fields` checks and builds the
scalar fields of rows ``start..stop`` (status, score, crowd flag, round-trip
stash, unknown fields) as column lists, and :meth:`CocoRows.dataset` makes the
:class:`~posekit.dataset.PoseDataset` of :func:`~posekit.formats.coco.from_coco`
from them. The store's bulk import writes columns straight from the chunks,
without building an :class:`~posekit.core.Instance` per annotation.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats.coco_schema import (
    ABSENT,
    ANNOTATION_KEYS,
    FLOAT32_MAX,
    OPTIONAL_NULLABLE,
    POSEKIT_FIELD,
    STASH_KEY,
    CocoFormatError,
    element_name,
    geometry_crc_arrays,
    is_number,
)
from posekit.formats.numbers import is_finite_number
from posekit.skeleton import Skeleton
from posekit.statuses import INSTANCE_STATUSES

__all__ = ["CocoFields", "CocoRows"]


@dataclass
class CocoFields:
    """Scalar fields of the keypoint-category annotations ``start..stop`` of a file,
    one list entry per annotation (``rows`` of :class:`CocoRows`)."""

    start: int
    stop: int
    ids: list[int]
    iscrowd: list[bool]
    area: list[float | None]
    score: list[float | None]
    track_id: list[int | None]
    status: list[str]
    source: list[str]
    keypoint_scores: list[np.ndarray | None]  #: ``(K,) float32`` in the template's layout
    segmentation: list[Any]
    extra: list[dict[str, Any]]  #: unknown fields, with the round-trip stash if any


@dataclass
class CocoRows:
    """A COCO keypoints file that passed every whole-array check (see the module)."""

    source: str
    skeleton: Skeleton
    records: list[ImageRecord]
    #: The parsed annotations. Read by :func:`~posekit.formats.coco_read.prepare_coco_file`,
    #: their ``keypoints`` may be unparsed JSON (``msgspec.Raw``): ``xy`` and ``vis``
    #: hold them, and the rows whose stash keeps the file's list have it parsed.
    anns: list[Any]
    rows: list[int]  #: annotation index of each keypoint-category annotation
    row_image: list[int]  #: position in ``records`` of each row's image
    xy: np.ndarray  #: ``(N, K, 2) float32`` in the template's layout
    vis: np.ndarray  #: ``(N, K) uint8``
    boxes: np.ndarray  #: ``(B, 4) float32`` xyxy of the rows that have a box
    box_index: list[int]  #: row -> index into ``boxes`` (-1: no box)
    counts: list[int]  #: labeled points of each row as the file has them
    special: list[bool]  #: rows that may need a stash (checked one by one)
    kp_stash: np.ndarray  #: rows whose keypoints are stashed verbatim
    box_stash: np.ndarray  #: rows whose box is stashed verbatim
    identity: bool
    mapping: np.ndarray
    k_file: int
    category_id: int
    info: Any
    licenses: Any
    category: dict[str, Any] | None
    extra_categories: list[Any]
    extra_annotations: list[dict[str, Any]]
    extra: dict[str, Any]

    def __len__(self) -> int:
        return len(self.rows)

    def _where(self, row: int) -> str:
        a = self.rows[row]
        return f"{self.source}: {element_name('annotations', a, self.anns[a])}"

    def fields(
        self, start: int = 0, stop: int | None = None, order: Sequence[int] | None = None
    ) -> CocoFields:
        """Check and build the scalar fields of rows ``start..stop`` (of
        ``order[start:stop]`` if given, a permutation of the rows).

        Raises:
            CocoFormatError: naming the first bad annotation of the chunk.
        """
        stop = len(self.rows) if stop is None else stop
        anns, rows, counts, special = self.anns, self.rows, self.counts, self.special
        box_index = self.box_index
        picked = range(start, stop) if order is None else order[start:stop]
        chunk = [anns[rows[row]] for row in picked]
        # Column by column (comprehensions); the rows that need a closer look (odd
        # types, a stash, a posekit review field) are then handled one by one, in order.
        crowd = [ann.get("iscrowd", ABSENT) for ann in chunk]
        areas = [ann.get("area") for ann in chunk]
        segs = [ann.get("segmentation") for ann in chunk]
        reviews = [ann.get(POSEKIT_FIELD) for ann in chunk]
        superset = ANNOTATION_KEYS.issuperset
        if all(map(superset, chunk)):
            extras: list[dict[str, Any]] = [{} for _ in chunk]
        else:
            extras = [
                {} if superset(ann) else {k: v for k, v in ann.items() if k not in ANNOTATION_KEYS}
                for ann in chunk
            ]
        if self._regular_chunk(chunk, picked, crowd, areas, segs):
            # Only the special rows and those with a review field need a closer look.
            special_rows = [special[row] for row in picked]
            irregular = (
                []
                if reviews.count(None) == len(reviews) and not any(special_rows)
                else [
                    j
                    for j, (sp, review) in enumerate(zip(special_rows, reviews))
                    if sp or review is not None
                ]
            )
        else:
            irregular = [
                j
                for j, (row, ann, iscrowd, area, segmentation, review) in enumerate(
                    zip(picked, chunk, crowd, areas, segs, reviews)
                )
                if review is not None
                or special[row]
                or type(iscrowd) is not int
                or not 0 <= iscrowd <= 1
                or not (area is None or (type(area) is float and abs(area) <= FLOAT32_MAX))
                or type(ann.get("num_keypoints", ABSENT)) is not int
                or ann["num_keypoints"] != counts[row]
                or "score" in ann
                or "track_id" in ann
                or (area is None and "area" in ann)
                or (segmentation is None and "segmentation" in ann)
                or (box_index[row] < 0 and "bbox" in ann)
            ]
        m = len(chunk)
        out = CocoFields(
            start, stop, [ann["id"] for ann in chunk], [c == 1 for c in crowd], areas,
            [None] * m, [None] * m, ["accepted"] * m, ["manual"] * m, [None] * m, segs, extras,
        )  # fmt: skip
        for j in irregular:
            self._irregular(out, j, picked[j], chunk[j], crowd[j], reviews[j])
        return out

    def _regular_chunk(
        self, chunk: list[Any], picked: Sequence[int], crowd: list[Any], areas: list[Any],
        segs: list[Any],
    ) -> bool:  # fmt: skip
        """Whether no row of the chunk fails any of :meth:`fields`' per-row tests other
        than ``special`` and a review field, tested column by column (C-level passes):
        ``iscrowd`` ints 0/1, ``area`` floats within float32, ``num_keypoints`` ints
        equal to the counts, no ``score``, ``track_id`` or null segmentation, a box
        on every row. False does not mean a bad row: the per-row tests then decide."""
        if not chunk:
            return True
        if set(map(type, crowd)) != {int} or min(crowd) < 0 or max(crowd) > 1:
            return False
        if set(map(type, areas)) != {float}:
            return False
        if not bool((np.abs(np.array(areas, dtype=np.float64)) <= FLOAT32_MAX).all()):
            return False  # (NaN fails this too, as abs(area) <= FLOAT32_MAX does)
        if type(None) in set(map(type, segs)):
            return False
        given = [ann.get("num_keypoints", ABSENT) for ann in chunk]
        if set(map(type, given)) != {int} or given != [self.counts[row] for row in picked]:
            return False
        if any(map(operator.contains, chunk, repeat("score"))):
            return False
        if any(map(operator.contains, chunk, repeat("track_id"))):
            return False
        box_index = self.box_index
        return min(map(box_index.__getitem__, picked)) >= 0

    def _irregular(
        self, out: CocoFields, j: int, row: int, ann: dict[str, Any], iscrowd: Any, review: Any
    ) -> None:
        """The fields of one row that needs a closer look (see :meth:`fields`)."""
        area = out.area[j]
        segmentation = out.segmentation[j]
        raw_count = ann.get("num_keypoints", ABSENT)
        b = self.box_index[row]
        stash: dict[str, Any] | None = None
        if (
            self.special[row]
            or type(iscrowd) is not int
            or not 0 <= iscrowd <= 1
            or not (area is None or (type(area) is float and abs(area) <= FLOAT32_MAX))
            or type(raw_count) is not int
            or raw_count != self.counts[row]
            or "score" in ann
            or "track_id" in ann
            or (area is None and "area" in ann)
            or (segmentation is None and "segmentation" in ann)
            or (b < 0 and "bbox" in ann)
        ):
            stash, iscrowd, area, score, track_id = _annotation_fields(
                ann, self._where(row), self.counts[row], self.identity,
                bool(self.kp_stash[row]), bool(self.box_stash[row]),
            )  # fmt: skip
            out.iscrowd[j], out.area[j] = iscrowd == 1, area
            out.score[j], out.track_id[j] = score, track_id
        if review is not None:
            out.status[j], out.source[j], out.keypoint_scores[j] = _read_review(
                review, self._where(row), self.k_file, self.mapping, self.identity
            )
        if stash:
            if "keypoints" in stash or "bbox" in stash or "num_keypoints" in stash:
                stash["crc"] = geometry_crc_arrays(
                    self.xy[row], self.vis[row], self.boxes[b] if b >= 0 else None
                )
            out.extra[j][STASH_KEY] = stash

    def dataset(self) -> PoseDataset:
        """The :class:`PoseDataset` of :func:`~posekit.formats.coco.from_coco`."""
        fields = self.fields()
        xy_rows, vis_rows, box_rows = list(self.xy), list(self.vis), list(self.boxes)
        per_image: list[list[Instance]] = [[] for _ in self.records]
        trusted = Instance.trusted
        # Validated in bulk (shapes, dtypes, 0/1/2 visibility, finiteness, zeroed
        # unlabeled points, box order) and by fields(): no re-validation.
        for row, b, image, iid, crowd, area, score, track, status, origin, kps, seg, extra in zip(
            range(len(self.rows)), self.box_index, self.row_image, fields.ids, fields.iscrowd,
            fields.area, fields.score, fields.track_id, fields.status, fields.source,
            fields.keypoint_scores, fields.segmentation, fields.extra,
        ):  # fmt: skip
            instance = trusted(
                xy_rows[row], vis_rows[row], keypoint_scores=kps,
                box=box_rows[b] if b >= 0 else None, score=score, source=origin,
                status=status, track_id=track, iscrowd=crowd, area=area,
                segmentation=seg, id=iid, extra=extra,
            )  # fmt: skip
            per_image[image].append(instance)
        return PoseDataset(
            skeleton=self.skeleton,
            images=[LabeledImage(record, items) for record, items in zip(self.records, per_image)],
            category_id=self.category_id,
            info=self.info,
            licenses=self.licenses,
            category=self.category,
            extra_categories=self.extra_categories,
            extra_annotations=self.extra_annotations,
            extra=self.extra,
        )


def _annotation_fields(
    ann: dict[str, Any],
    where: str,
    count: int,
    identity: bool,
    keypoints_differ: bool,
    bbox_differs: bool,
) -> tuple[dict[str, Any], int, float | None, float | None, int | None]:
    """Slow path of :func:`from_coco` for one annotation: validate the scalar fields
    and build the round-trip stash. Returns ``(stash, iscrowd, area, score, track_id)``."""
    stash: dict[str, Any] = {}
    if "keypoints" not in ann:
        stash.setdefault("absent", []).append("keypoints")
    elif keypoints_differ:
        stash["keypoints"] = ann["keypoints"]
    if bbox_differs:
        stash["bbox"] = ann["bbox"]
    raw_count = ann.get("num_keypoints", ABSENT)
    if raw_count is ABSENT:
        stash.setdefault("absent", []).append("num_keypoints")
    elif type(raw_count) is not int or raw_count != count:
        if not is_number(raw_count):
            raise CocoFormatError(f"{where}: 'num_keypoints' must be an integer, got {raw_count!r}")
        if identity:
            stash["num_keypoints"] = raw_count
    iscrowd = ann.get("iscrowd", ABSENT)
    if iscrowd is ABSENT:
        stash.setdefault("absent", []).append("iscrowd")
        iscrowd = 0
    elif type(iscrowd) not in (int, float, bool) or iscrowd not in (0, 1):
        raise CocoFormatError(f"{where}: 'iscrowd' must be 0 or 1, got {iscrowd!r}")
    elif type(iscrowd) is not int:
        stash.setdefault("raw", {})["iscrowd"] = iscrowd
    scalars: dict[str, Any] = {}
    for key, kind in (("area", float), ("score", float), ("track_id", int)):
        value = ann.get(key)
        if value is None:
            scalars[key] = None
            continue
        if not is_finite_number(value) or (kind is int and value != int(value)):
            raise CocoFormatError(
                f"{where}: {key!r} must be a finite {'integer' if kind is int else 'number'}, "
                f"got {value!r}"
            )
        if kind is float and abs(value) > FLOAT32_MAX:
            raise CocoFormatError(f"{where}: {key!r} {value!r} is beyond the float32 range")
        scalars[key] = kind(value)
        if type(value) is not kind:
            stash.setdefault("raw", {})[key] = value
    for key in OPTIONAL_NULLABLE:
        if key in ann and ann[key] is None:
            stash.setdefault("null", []).append(key)
    return stash, int(iscrowd), scalars["area"], scalars["score"], scalars["track_id"]


def _read_review(
    review: Any, where: str, k_file: int, mapping: np.ndarray, identity: bool
) -> tuple[str, str, np.ndarray | None]:
    if not isinstance(review, dict):
        raise CocoFormatError(f"{where}: {POSEKIT_FIELD!r} must be an object")
    unknown = set(review) - {"status", "source", "keypoint_scores"}
    if unknown:
        raise CocoFormatError(f"{where}: {POSEKIT_FIELD!r} has unknown key {sorted(unknown)[0]!r}")
    status = review.get("status", "accepted")
    if status not in INSTANCE_STATUSES:
        raise CocoFormatError(
            f"{where}: {POSEKIT_FIELD}.status {status!r} is not one of "
            f"{', '.join(INSTANCE_STATUSES)}"
        )
    origin = review.get("source", "manual")
    if not isinstance(origin, str) or not (origin == "manual" or origin.startswith("model:")):
        raise CocoFormatError(
            f"{where}: {POSEKIT_FIELD}.source must be 'manual' or 'model:<name>', got {origin!r}"
        )
    raw_scores = review.get("keypoint_scores")
    if raw_scores is None:
        return status, origin, None
    if (
        not isinstance(raw_scores, list)
        or len(raw_scores) != k_file
        or not all(is_finite_number(s) for s in raw_scores)
    ):
        raise CocoFormatError(
            f"{where}: {POSEKIT_FIELD}.keypoint_scores must be {k_file} finite numbers"
        )
    scores = np.asarray(raw_scores, dtype=np.float32)
    if not identity:
        scores = np.where(mapping >= 0, scores[np.where(mapping >= 0, mapping, 0)], 0.0)
        scores = scores.astype(np.float32)
    return status, origin, scores
