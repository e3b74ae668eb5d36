"""The fast path of reading a Label Studio export file,
:func:`from_labelstudio_json` (the bytes of a file), beside the generic reader of
:mod:`posekit.formats.labelstudio_read`; two paths, one result.

msgspec decodes the bytes into the typed structs of
:mod:`posekit.formats.labelstudio_schema` (a few objects per keypoint region, not
~13), and :func:`_build` reads every region of the file at once, one numpy column
per field (``map``/``attrgetter`` into ``np.fromiter``, no Python loop per
region); parentIDs and occlusion choices are matched to their regions by (string
hash, result list) keys, which is exact because the file's ids are first checked
to have distinct hashes (the layout posekit writes, each keypoint after its box
and each choice right after its keypoint, is checked as such; another layout is
searched with ``searchsorted``). It makes the checks of the generic reader on the
columns; where one would fail, or for what it leaves aside (a strict decode that
fails on an unexpected type, keypoints without a parent box, rotated boxes, tasks
without a known size, labels that are aliases...), it raises :class:`_NotFast`
and the bytes are read by the generic reader, which reads them or raises its
usual error. Both give the same dataset (same arrays and dtypes;
``tests/formats/test_labelstudio_fast.py``).

Integers beyond 64 bits: orjson reads them as floats, so a task id such as
``2**70`` is no image id; the fast path leaves such files to the generic reader,
which keeps that behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from itertools import repeat
from operator import attrgetter, contains
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats.labelstudio_config import (
    DERIVED_BOX_NOTE,
    IMAGE_URL_KEY,
    LOCAL_FILES_PREFIX,
    OCCLUDED,
    LabelStudioFormatError,
    parse_labelstudio_config,
)
from posekit.formats.labelstudio_read import _file_name_of, from_labelstudio
from posekit.gc_pause import gc_paused
from posekit.media.paths import UnsafePathError, safe_relative_name
from posekit.skeleton import Skeleton, SkeletonError, names_mapping, template_for_names

__all__ = ["from_labelstudio_json"]

log = logging.getLogger(__name__)


class _NotFast(Exception):
    """The typed columns cannot give the generic reader's result for this input
    (a check would fail, or a rare case the fast path leaves to the generic one)."""


_INT64_MIN, _UINT64_END = -(2**63), 2**64  # orjson reads other integers as floats


def from_labelstudio_json(
    raw: bytes | memoryview,
    skeleton: Skeleton | None = None,
    *,
    label_config: str | None = None,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    source: str = "Label Studio export",
) -> PoseDataset:
    """:func:`from_labelstudio` of the JSON bytes of an export (``bytes``, or a
    ``memoryview`` such as a memory-mapped file's; nothing returned refers to it).

    Fast path: the bytes are decoded into the typed structs of
    :mod:`~posekit.formats.labelstudio_schema` and the keypoints are filled from
    columns (one numpy array per field over every region of the file) instead of
    region by region. When the strict decode fails (malformed JSON, a field of an
    unexpected type) or the columns show anything the fast path does not take
    (a check that fails, a rotated box, keypoints without a parent box, a task
    without a known size...), the bytes are parsed generically and read by
    :func:`from_labelstudio`, whose checks raise the usual messages. Both give the
    same dataset (``tests/formats/test_labelstudio_fast.py``).

    Raises:
        LabelStudioFormatError: invalid JSON or content (the message starts with ``source``).
    """
    config = parse_labelstudio_config(label_config) if label_config else None
    with gc_paused():
        tasks = _decode(raw)
        if tasks is not None:
            try:
                return _from_tasks(tasks, skeleton, config, image_sizes, source)
            except _NotFast:
                pass
            del tasks
        data = _parse(raw, source)
    return from_labelstudio(
        data, skeleton, label_config=label_config, image_sizes=image_sizes, source=source
    )


def _decode(raw: bytes | memoryview) -> Any:
    """The typed tasks of the bytes (see :mod:`~posekit.formats.labelstudio_schema`),
    or None: msgspec is not installed, or the strict decode fails."""
    try:
        import msgspec

        from posekit.formats.labelstudio_schema import decoder
    except ImportError:
        return None
    try:
        return decoder().decode(raw)
    except msgspec.MsgspecError:
        return None


def _parse(raw: bytes | memoryview, source: str) -> Any:
    import json

    import orjson

    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:  # the json module's message is the precise one
            return json.loads(bytes(raw))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LabelStudioFormatError(f"{source}: not valid JSON: {exc}") from None


class _Kinds(dict):
    """Region type -> 0 keypoint, 1 box, 2 choices, 3 other (a C-level lookup in ``map``)."""

    def __missing__(self, key: Any) -> int:
        return 3


_KIND = _Kinds(keypointlabels=0, rectanglelabels=1, choices=2)


def _column(objects: list[Any], field: str) -> np.ndarray:
    """``field`` of every object as a float64 column (None -> NaN), without a Python
    loop; non-finite numbers and integers beyond float64 are not taken."""
    get = attrgetter(field)
    try:
        column = np.fromiter(map(get, objects), np.float64, count=len(objects))
    except TypeError:  # a None among them
        values = list(map(get, objects))
        if values.count(None) == len(values):
            return np.full(len(values), np.nan)
        try:
            column = np.array(values, np.float64).reshape(-1)
        except (OverflowError, TypeError, ValueError):
            raise _NotFast from None
    except (OverflowError, ValueError):
        raise _NotFast from None
    if np.isinf(column).any():
        raise _NotFast
    return column


def _from_tasks(
    tasks: Any,
    skeleton: Skeleton | None,
    config: dict[str, Any] | None,
    image_sizes: Mapping[str, tuple[int, int]] | None,
    source: str,
) -> PoseDataset:
    """The dataset of decoded tasks, as :func:`_from_labelstudio` gives it for the
    same JSON, or :class:`_NotFast` (the per-task part: image, size from
    ``meta.posekit``, the result lists kept; the regions in :func:`_build`)."""
    from posekit.formats.labelstudio_schema import Task

    if isinstance(tasks, Task):
        tasks = [tasks]
    if skeleton is None:
        if not (config and config["keypoints"]):
            raise _NotFast  # the template comes from the labels used
        try:
            skeleton = template_for_names(config["keypoints"])
        except SkeletonError:
            raise _NotFast from None
    category = skeleton.category
    image_key = config["image_key"] if config else None
    sizes = dict(image_sizes or {})
    seen: set[str] = set()
    # per task: (where, file name, url, task id, size from meta); per result list
    # ("group"): its task, status, source, score and regions
    heads: list[tuple[str, str, str, int | None, tuple[int, int] | None]] = []
    group_task: list[int] = []
    group_info: list[tuple[str, str, float | None]] = []
    lists: list[list[Any]] = []
    for t, task in enumerate(tasks):
        task_id = task.id
        if task_id is not None and not _INT64_MIN <= task_id < _UINT64_END:
            raise _NotFast
        where = f"{source}: task[{t}]" + (f" (id {task_id})" if task_id is not None else "")
        task_data = task.data
        if task_data is None:
            raise _NotFast
        key = image_key or ("image" if "image" in task_data else None)
        if key is None:
            raise _NotFast
        url = task_data.get(key)
        if not isinstance(url, str) or not url:
            raise _NotFast
        meta = task.meta.posekit if task.meta is not None else None
        file_name = (meta.file_name if meta is not None else None) or _file_name_of(url)
        try:
            file_name = safe_relative_name(file_name)
        except UnsafePathError:
            raise _NotFast from None
        if file_name in seen:
            raise _NotFast
        seen.add(file_name)
        size = None
        if meta is not None and meta.width is not None and meta.height is not None:
            if not (0 < meta.width < _UINT64_END and 0 < meta.height < _UINT64_END):
                raise _NotFast
            size = (meta.width, meta.height)
        elif file_name in sizes:
            size = tuple(int(v) for v in sizes[file_name])
        heads.append((where, file_name, url, task_id, size))
        annotations = task.annotations or []
        kept = [
            (a.updated_at or a.created_at or "", n)
            for n, a in enumerate(annotations)
            if not (a.was_cancelled or a.skipped)
        ]
        if kept:
            group_task.append(t)
            group_info.append(("accepted", "manual", None))
            lists.append(annotations[max(kept)[1]].result or [])
        for prediction in task.predictions or []:
            version = prediction.model_version
            group_task.append(t)
            group_info.append(("predicted", f"model:{version}" if version else "manual",
                               prediction.score))  # fmt: skip
            lists.append(prediction.result or [])
    return _build(skeleton, category, heads, group_task, group_info, lists)


def _build(
    skeleton: Skeleton,
    category: str,
    heads: list[tuple[str, str, str, int | None, tuple[int, int] | None]],
    group_task: list[int],
    group_info: list[tuple[str, str, float | None]],
    lists: list[list[Any]],
) -> PoseDataset:
    """The dataset from the columns of every region of the file (see
    :func:`from_labelstudio_json`); each check of :class:`_Task` that would fail
    raises :class:`_NotFast` instead."""
    k = skeleton.num_keypoints
    n_tasks, n_groups = len(heads), len(lists)
    regions = [r for results in lists for r in results]
    n = len(regions)
    counts = np.array([len(results) for results in lists], np.int64).reshape(-1)
    region_group = np.repeat(np.arange(n_groups, dtype=np.int64), counts)
    task_of_group = np.array(group_task, np.int64).reshape(-1)
    kind = np.fromiter(map(_KIND.__getitem__, map(attrgetter("type"), regions)), np.int8,
                       count=n)  # fmt: skip

    # image size: from the regions (all of a task's sized regions agree), else meta
    sized_kind = kind < 3
    width = _column(regions, "original_width")
    height = _column(regions, "original_height")
    has_w, has_h = ~np.isnan(width), ~np.isnan(height)
    if (sized_kind & (has_w != has_h)).any():
        raise _NotFast
    sized = sized_kind & has_w
    if (sized & ~((width > 0) & (height > 0) & (width < 2**31) & (height < 2**31))).any():
        raise _NotFast
    task_width = np.zeros(n_tasks, np.float64)
    task_height = np.zeros(n_tasks, np.float64)
    sized_at = np.flatnonzero(sized)
    if sized_at.size:
        region_task = task_of_group[region_group[sized_at]]  # non-decreasing
        starts = np.flatnonzero(np.r_[True, region_task[1:] != region_task[:-1]])
        owners = region_task[starts]
        for column, out in ((width[sized_at], task_width), (height[sized_at], task_height)):
            low, high = np.minimum.reduceat(column, starts), np.maximum.reduceat(column, starts)
            if (low != high).any():
                raise _NotFast  # sizes that differ within a task
            out[owners] = low
    task_size: list[tuple[int, int] | None] = [
        (int(w), int(h)) if w > 0 else head[4]
        for w, h, head in zip(task_width.tolist(), task_height.tolist(), heads)
    ]
    group_has_size = np.array([task_size[t] is not None for t in group_task], bool).reshape(-1)
    if ((kind < 2) & ~group_has_size[region_group]).any():
        raise _NotFast  # regions of a task of unknown size: an error
    size_w = np.array([0 if s is None else s[0] for s in task_size], np.float64).reshape(-1)
    size_h = np.array([0 if s is None else s[1] for s in task_size], np.float64).reshape(-1)
    # Region ids and parentIDs are matched by their hashes (with the list they are
    # in), which is exact when no two different strings of the file share a hash.
    ids = list(map(attrgetter("id"), regions))
    parents = list(map(attrgetter("parentID"), regions))
    strings = set(ids)
    strings.update(parents)
    if len(set(map(hash, strings))) != len(strings):
        raise _NotFast  # a hash collision: matching by hash would not be exact
    id_hash = np.fromiter(map(hash, ids), np.int64, count=n)
    none_hash = hash(None)

    # boxes
    box_at = np.flatnonzero(kind == 1)
    boxes = list(map(regions.__getitem__, box_at.tolist()))
    box_group = region_group[box_at]
    box_hash = id_hash[box_at]
    if (box_hash == none_hash).any():
        raise _NotFast  # a box without an id
    try:
        values = list(map(attrgetter("value"), boxes))
        bx, by = _column(values, "x"), _column(values, "y")
        bw, bh = _column(values, "width"), _column(values, "height")
        brot = _column(values, "rotation")
        is_person = _contains(list(map(attrgetter("rectanglelabels"), values)), category)
    except AttributeError:  # a box without a value
        raise _NotFast from None
    box_score = _column(boxes, "score")
    metas = list(map(attrgetter("meta"), boxes))
    if metas.count(None) == len(metas):
        derived = np.zeros(len(boxes), bool)
    else:
        texts = [None if meta is None else meta.text for meta in metas]
        derived = _contains(texts, DERIVED_BOX_NOTE)
    if not (
        ((bx >= 0) & (bx <= 100) & (by >= 0) & (by <= 100)).all()
        and ((bw >= 0) & (bh >= 0)).all()
        and (np.isnan(brot) | (brot == 0)).all()
        and ((bx + bw <= 100.0 + 1e-6) & (by + bh <= 100.0 + 1e-6)).all()
    ):
        raise _NotFast  # NaN (missing) fails the comparisons too; rotated boxes
    box_task = task_of_group[box_group]
    bwidth, bheight = size_w[box_task], size_h[box_task]
    box_xyxy = (
        np.stack([bx * bwidth, by * bheight, (bx + bw) * bwidth, (by + bh) * bheight], axis=1)
        / 100.0
    ).astype(np.float32)

    # keypoints
    point_at = np.flatnonzero(kind == 0)
    point_group = region_group[point_at]
    point_hash = id_hash[point_at]
    parent_hash = np.fromiter(map(hash, parents), np.int64, count=n)[point_at]
    if (point_hash == none_hash).any():
        raise _NotFast  # a keypoint without an id
    px = _at(regions, point_at, lambda objects: _column(objects, "value.x"))
    py = _at(regions, point_at, lambda objects: _column(objects, "value.y"))
    if not ((px >= 0) & (px <= 100) & (py >= 0) & (py <= 100)).all():
        raise _NotFast
    label_index = _LabelIndex(skeleton)
    point_index = _at(
        regions,
        point_at,
        lambda objects: np.fromiter(
            map(label_index.__getitem__, map(attrgetter("value.keypointlabels"), objects)),
            np.int64,
            count=len(objects),
        ),
    )
    if point_index.size and point_index.min() < 0:
        raise _NotFast  # a label the template does not know
    point_score = _at(regions, point_at, lambda objects: _column(objects, "score"))

    # parentID -> the box of the same list with that id (none: ungrouped keypoints,
    # one person per list, left to the generic path)
    point_box = _preceding(point_at, box_at, parent_hash, point_group, box_hash, box_group)
    if point_box is None:  # not each keypoint after its box (or repeated box ids)
        point_box = _match(parent_hash, point_group, box_hash, box_group, unique=True)
    if (point_box < 0).any():
        raise _NotFast
    slot = point_box * k + point_index
    taken = np.zeros(len(boxes) * k, bool)
    taken[slot] = True
    if np.count_nonzero(taken) != slot.size:
        raise _NotFast  # a keypoint twice in a person
    # occlusion: a choices region "occluded" of the list with the keypoint's id
    point_occluded = np.zeros(point_at.size, bool)
    choice_at = np.flatnonzero(kind == 2)
    if choice_at.size and point_at.size:
        choices = list(map(regions.__getitem__, choice_at.tolist()))
        try:
            choice_values = list(map(attrgetter("value.choices"), choices))
        except AttributeError:  # a choices region without a value
            choice_values = [c.value.choices if c.value is not None else None for c in choices]
        flags = _contains(choice_values, OCCLUDED)
        occluded_at = choice_at[flags]
        occluded_hash = id_hash[occluded_at]
        keep = occluded_hash != none_hash  # choices without an id mark nothing
        occluded_at, occluded_hash = occluded_at[keep], occluded_hash[keep]
        # as posekit writes them, each choice right after its keypoint
        previous = _preceding(occluded_at, point_at, occluded_hash, region_group[occluded_at],
                              point_hash, point_group, adjacent=True)  # fmt: skip
        if previous is not None:
            point_occluded[previous] = True
        else:
            found = _match(point_hash, point_group, occluded_hash, region_group[occluded_at],
                           unique=False)  # fmt: skip
            point_occluded = found >= 0

    # persons: the boxes with keypoints or of the template's category, in file order
    has_points = np.zeros(len(boxes), bool)
    has_points[point_box] = True
    person_box = np.flatnonzero(has_points | is_person)
    row_of_box = np.full(len(boxes), -1, np.int64)
    row_of_box[person_box] = np.arange(person_box.size)
    n_persons = person_box.size
    row = row_of_box[point_box]
    point_task = task_of_group[point_group]
    xy = np.zeros((n_persons, k, 2), np.float64)
    xy[row, point_index, 0] = px * (size_w[point_task] / 100.0)
    xy[row, point_index, 1] = py * (size_h[point_task] / 100.0)
    visibility = np.zeros((n_persons, k), np.uint8)
    visibility[row, point_index] = np.where(point_occluded, 1, 2)
    scored = ~np.isnan(point_score)
    person_scored = np.zeros(n_persons, bool)
    person_scored[row[scored]] = True
    scores = np.zeros((n_persons, k), np.float32)
    scores[row[scored], point_index[scored]] = point_score[scored]
    person_score = box_score[person_box]

    items: list[list[Instance]] = [[] for _ in range(n_tasks)]
    trusted = Instance.trusted
    for g, keypoints, visible, keypoint_scores, with_scores, box, derived_box, score in zip(
        box_group[person_box].tolist(),
        list(xy.astype(np.float32)),
        list(visibility),
        list(scores),
        person_scored.tolist(),
        list(box_xyxy[person_box]),
        derived[person_box].tolist(),
        person_score.tolist(),
    ):
        status, origin, _ = group_info[g]
        items[group_task[g]].append(
            trusted(
                keypoints,
                visible,
                keypoint_scores=keypoint_scores if with_scores else None,
                box=None if derived_box else box,
                score=None if score != score else score,  # NaN: no score
                source=origin,
                status=status,
            )
        )
    images: list[LabeledImage] = []
    for t, (where, file_name, url, task_id, _) in enumerate(heads):
        size = task_size[t]
        if size is None:
            log.warning("%s: no labels and no image size; task skipped", where)
            continue
        record = ImageRecord(file_name, size[0], size[1], task_id)
        if url != LOCAL_FILES_PREFIX + file_name:
            record.extra[IMAGE_URL_KEY] = url
        images.append(LabeledImage(record, items[t]))
    return PoseDataset(skeleton=skeleton, images=images)


def _at(regions: list[Any], at: np.ndarray, column_of: Any) -> np.ndarray:
    """``column_of(regions)[at]``; when a region outside ``at`` lacks the field's
    parent (a relation has no ``value``), the column of ``regions[at]`` only."""
    try:
        return column_of(regions)[at]
    except AttributeError:
        pass
    try:
        return column_of(list(map(regions.__getitem__, at.tolist())))
    except AttributeError:  # a keypoint without a value
        raise _NotFast from None


def _contains(tuples: list[tuple[str, ...] | None], name: str) -> np.ndarray:
    """Whether each tuple (None: empty) holds ``name``, as a bool column."""
    try:
        return np.fromiter(map(contains, tuples, repeat(name)), bool, count=len(tuples))
    except TypeError:  # a None among them
        return np.array([name in (t or ()) for t in tuples], bool).reshape(-1)


def _unique_pairs(hashes: np.ndarray, groups: np.ndarray) -> bool:
    """Whether no (hash, list) pair repeats (False also for a rare key collision)."""
    keys = np.sort(_pair_keys(hashes, groups))
    return not (keys[1:] == keys[:-1]).any()


def _pair_keys(hashes: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return hashes.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + groups.astype(np.uint64)


def _preceding(
    positions: np.ndarray,
    target_positions: np.ndarray,
    hashes: np.ndarray,
    groups: np.ndarray,
    target_hashes: np.ndarray,
    target_groups: np.ndarray,
    *,
    adjacent: bool = False,
) -> np.ndarray | None:
    """The common layout, checked without a search: each region (at ``positions``
    in the file) refers to the last target before it (``adjacent``: the region just
    before it), in the same list, with the hash it names, and the targets' (hash,
    list) pairs are unique, so that target is the one a search would find. Its
    index per region, or None when the layout is another."""
    if not positions.size:
        return np.zeros(0, np.int64)
    if not target_positions.size:
        return None
    index = np.searchsorted(target_positions, positions) - 1
    if index.min() < 0:
        return None
    if adjacent and not (target_positions[index] == positions - 1).all():
        return None
    if not (
        (target_groups[index] == groups).all()
        and (target_hashes[index] == hashes).all()
        and _unique_pairs(target_hashes, target_groups)
    ):
        return None
    return index


def _match(
    hashes: np.ndarray,
    groups: np.ndarray,
    target_hashes: np.ndarray,
    target_groups: np.ndarray,
    *,
    unique: bool,
) -> np.ndarray:
    """Position in the targets of each (hash, list) pair (-1: none), by sorting on
    a combined key and comparing both parts of what it finds. ``unique``: the
    targets must not repeat a key (else :class:`_NotFast`); a key shared by
    different pairs also gives :class:`_NotFast`."""
    keys = _pair_keys(hashes, groups)
    targets = _pair_keys(target_hashes, target_groups)
    order = np.argsort(targets, kind="stable")
    ordered = targets[order]
    repeated = ordered[1:] == ordered[:-1]
    if repeated.any():
        if unique:
            raise _NotFast  # a repeated box id in a list (or a key shared by two)
        first, second = order[:-1][repeated], order[1:][repeated]
        if (target_hashes[first] != target_hashes[second]).any() or (
            target_groups[first] != target_groups[second]
        ).any():
            raise _NotFast  # two pairs with one key
    if not ordered.size:
        return np.full(keys.size, -1, np.int64)
    position = np.minimum(np.searchsorted(ordered, keys), ordered.size - 1)
    found = np.where(ordered[position] == keys, order[position], -1)
    hit = found >= 0
    if (target_hashes[found[hit]] != hashes[hit]).any() or (
        target_groups[found[hit]] != groups[hit]
    ).any():
        raise _NotFast  # a key shared by two pairs
    return found


class _LabelIndex(dict):
    """``value.keypointlabels`` (a one-name tuple, or None) -> template index, as
    :meth:`_Task.index_of` (-1: None, -2: a name the template does not know)."""

    def __init__(self, skeleton: Skeleton) -> None:
        super().__init__()
        self.skeleton = skeleton

    def __missing__(self, key: Any) -> int:
        index = -1
        if key is not None:
            found = np.flatnonzero(names_mapping([key[0]], self.skeleton) == 0)
            index = int(found[0]) if found.size else -2
        self[key] = index
        return index
