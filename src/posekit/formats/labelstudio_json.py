"""The Label Studio task list written straight to JSON bytes: the same bytes as
``orjson.dumps(to_labelstudio(dataset))``, without building the ~13 Python objects
per keypoint that the task list holds (a 100k-instance export has 1.7M keypoint
regions; building and serialising them dominated the export).

The numbers are computed for all instances at once (numpy, the same float64
operations as :func:`~posekit.formats.labelstudio_write._results_of`), formatted
by orjson itself (so every float reads as orjson writes it), and the regions are
put together from templates in the order and with the keys of the task list
(one comprehension per instance for its keypoint regions and their occlusion
choices; each task is encoded on its own, so that the 400 MB text of a
100k-instance export is never held, copied and encoded as a whole ``str``, and
:func:`labelstudio_json_stream` makes the encoded tasks one at a time for a file
writer).
Anything orjson would not write as is (integers beyond 64 bits, strings that are
not valid UTF-8) makes :func:`labelstudio_json_bytes` return None (a stream raises
one of :data:`NOT_ENCODABLE` while it is read), and the caller serialises the task
list instead. ``tests/formats/test_labelstudio.py`` and
``tests/formats/test_labelstudio_fast.py`` check that both give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.dataset import PoseDataset
from posekit.formats.labelstudio_config import DERIVED_BOX_NOTE, OCCLUDED
from posekit.formats.labelstudio_write import (
    _POINT_WIDTH_PX,
    _model_version,
    _plan,
    _prediction_score,
    _task_head,
    _TaskPlan,
    _warn_clipped,
    log,
)
from posekit.gc_pause import gc_paused

__all__ = ["NOT_ENCODABLE", "labelstudio_json_bytes", "labelstudio_json_stream"]


def _floats(values: np.ndarray) -> list[str]:
    """Each float64 value as orjson writes it."""
    import orjson

    if values.size == 0:
        return []
    return orjson.dumps(values.tolist()).decode()[1:-1].split(",")


def _text(value: Any) -> str:
    """A JSON value (string, int, dict) as orjson writes it."""
    import orjson

    return orjson.dumps(value).decode()


class _Numbers:
    """The formatted numbers of every written instance, in file order."""

    def __init__(self, instances: list[Instance], sizes: np.ndarray, k: int) -> None:
        n = len(instances)
        xy = (
            np.concatenate([i.keypoints for i in instances]).reshape(n, k, 2).astype(np.float32)
            if n
            else np.zeros((0, k, 2), np.float32)
        )
        vis = (
            np.concatenate([i.visibility for i in instances]).reshape(n, k)
            if n
            else np.zeros((0, k), np.uint8)
        )
        labeled = vis > 0
        # boxes: the instance's own, else the tight box around its labeled points
        # (core.box_from_keypoints: float32 min/max); no box and no point: not written
        given = np.array([i.box is not None for i in instances], dtype=bool)
        boxes = np.zeros((n, 4), np.float32)
        if given.any():
            boxes[given] = np.stack([i.box for i in instances if i.box is not None])
        x, y = xy[:, :, 0], xy[:, :, 1]
        inf = np.float32(np.inf)
        derived_box = np.stack(
            [
                np.where(labeled, x, inf).min(axis=1),
                np.where(labeled, y, inf).min(axis=1),
                np.where(labeled, x, -inf).max(axis=1),
                np.where(labeled, y, -inf).max(axis=1),
            ],
            axis=1,
        ) if n else np.zeros((0, 4), np.float32)  # fmt: skip
        boxes[~given] = derived_box[~given]
        self.derived = ~given
        self.written = given | labeled.any(axis=1)
        size4 = np.concatenate([sizes, sizes], axis=1)  # (n, 4): w, h, w, h
        box64 = boxes.astype(np.float64)
        inside_box = np.clip(box64, 0.0, size4)
        clipped_boxes = (inside_box != box64).any(axis=1) & self.written
        x1, y1, x2, y2 = (inside_box[:, j] for j in range(4))
        w, h = sizes[:, 0], sizes[:, 1]
        box_values = np.stack(
            [x1 / w * 100.0, y1 / h * 100.0, (x2 - x1) / w * 100.0, (y2 - y1) / h * 100.0],
            axis=1,
        )
        self.box_values = _floats(box_values[self.written].reshape(-1))
        # keypoints (labeled ones of written instances, row-major: instance, keypoint)
        points = labeled & self.written[:, None]
        owner, index = np.nonzero(points)
        xy64 = xy[owner, index].astype(np.float64)
        inside = np.clip(xy64, 0.0, sizes[owner])
        self.clipped = [
            int(np.count_nonzero((inside != xy64).any(axis=1))),
            int(np.count_nonzero(clipped_boxes)),
        ]
        percent = inside / sizes[owner] * 100.0
        self.points_x = _floats(percent[:, 0])
        self.points_y = _floats(percent[:, 1])
        self.point_owner, self.point_index = owner, index
        self.point_occluded = vis[owner, index] == 1
        self.point_counts = np.count_nonzero(points, axis=1).tolist()
        with_scores = np.array([i.keypoint_scores is not None for i in instances], dtype=bool)
        self.point_scored = with_scores[owner]
        if with_scores.any():
            scores = np.zeros((n, k), np.float32)
            scores[with_scores] = np.stack(
                [i.keypoint_scores for i in instances if i.keypoint_scores is not None]
            )
            scored = with_scores[owner]
            self.point_scores = _floats(scores[owner[scored], index[scored]].astype(np.float64))
        else:
            self.point_scores = []
        self.instance_scores = _floats(
            np.array([float(i.score) for i in instances if i.score is not None], np.float64)
        )


def labelstudio_json_bytes(
    dataset: PoseDataset,
    *,
    image_prefix: str,
    image_name: str = "image",
    keypoints_name: str = "keypoints",
    box_name: str = "bbox",
    visibility_name: str = "visibility",
) -> bytes | None:
    """``orjson.dumps(to_labelstudio(dataset, ...))``, built without the task list
    (None: a value orjson cannot write as is; serialise the task list instead).

    Raises:
        LabelStudioFormatError: as :func:`~posekit.formats.labelstudio.to_labelstudio`.
    """
    stream = labelstudio_json_stream(
        dataset,
        image_prefix=image_prefix,
        image_name=image_name,
        keypoints_name=keypoints_name,
        box_name=box_name,
        visibility_name=visibility_name,
    )
    try:
        with gc_paused():
            return b"".join(stream)
    except NOT_ENCODABLE:
        return None


#: Raised while a stream is read when orjson cannot write a value as is (integers
#: beyond 64 bits, surrogates): serialise the task list instead.
NOT_ENCODABLE = (TypeError, UnicodeError)


def labelstudio_json_stream(
    dataset: PoseDataset,
    *,
    image_prefix: str,
    image_name: str = "image",
    keypoints_name: str = "keypoints",
    box_name: str = "bbox",
    visibility_name: str = "visibility",
) -> Iterator[bytes]:
    """:func:`labelstudio_json_bytes` as pieces made one at a time ("[" or "," and a
    task, then "]"), for a file writer: one task's bytes are alive at a time, not
    the whole export (its 400 MB, and the heap they would leave behind). Reading it
    raises one of :data:`NOT_ENCODABLE` for a value orjson cannot write as is.

    Raises:
        LabelStudioFormatError: at once, as :func:`~posekit.formats.labelstudio.to_labelstudio`.
    """
    plans = _plan(dataset, image_prefix)
    return _encode(plans, dataset, image_name, keypoints_name, box_name, visibility_name)


def _encode(
    plans: list[_TaskPlan],
    dataset: PoseDataset,
    image_name: str,
    keypoints_name: str,
    box_name: str,
    visibility_name: str,
) -> Iterator[bytes]:
    skeleton = dataset.skeleton
    k = skeleton.num_keypoints
    ordered: list[Instance] = []
    sizes: list[tuple[int, int]] = []
    for plan in plans:
        for _, instances, _ in plan.groups():
            ordered.extend(instances)
            sizes.extend([plan.size] * len(instances))
    numbers = _Numbers(ordered, np.array(sizes, np.float64).reshape(-1, 2), k)
    image = _text(image_name)
    kp_from, box_from, vis_from = _text(keypoints_name), _text(box_name), _text(visibility_name)
    label_of = [_text(name) for name in skeleton.keypoints]
    category, occluded, note = _text(skeleton.category), _text(OCCLUDED), _text(DERIVED_BOX_NOTE)
    written, derived = numbers.written.tolist(), numbers.derived.tolist()
    box_values, instance_scores = numbers.box_values, numbers.instance_scores
    counts = numbers.point_counts
    point_index = numbers.point_index.tolist()
    point_occluded = numbers.point_occluded.tolist()
    point_scored = numbers.point_scored.tolist()
    xs, ys = numbers.points_x, numbers.points_y
    # per keypoint index: the id suffix, and the label closing the value
    suffix_of = [f"k{j}" for j in range(k)]
    label_end = [f"{label}]}}" for label in label_of]
    # the point's closing: its score (scored instances), '}'
    closings = ["}"] * len(xs)
    if numbers.point_scores:
        scored_at = np.flatnonzero(numbers.point_scored).tolist()
        for j, value in zip(scored_at, numbers.point_scores):
            closings[j] = f',"score":{value}}}'
    del point_scored
    n = b = p = c = 0  # instance, written box, point, instance score
    opening = True  # no task yet: the next one opens the list
    for plan in plans:
        head = _task_head(plan, image_name)
        width, height = plan.size
        common = (f'"to_name":{image},"original_width":{_text(width)},'
                  f'"original_height":{_text(height)},"image_rotation":0')  # fmt: skip
        point_width = _text(_POINT_WIDTH_PX / width * 100.0)
        tail = f',"width":{point_width},"keypointlabels":['
        choice_tail = f'","type":"choices","from_name":{vis_from},{common},' + (
            f'"value":{{"choices":[{occluded}]}}}}'
        )
        annotations: list[str] = []
        predictions: list[str] = []
        for origin, instances, first in plan.groups():
            regions: list[str] = []
            for m, instance in enumerate(instances):
                if instance.score is not None:
                    score = f',"score":{instance_scores[c]}'
                    c += 1
                else:
                    score = ""
                if not written[n]:
                    log.warning(
                        "%s: an instance with no box and no labeled point is not written",
                        plan.where,
                    )
                    n += 1
                    continue
                box_id = f"p{first + m}"
                meta = f',"meta":{{"text":[{note}]}}' if derived[n] else ""
                regions.append(
                    f'{{"id":"{box_id}","type":"rectanglelabels","from_name":{box_from},'
                    f'{common},"value":{{"x":{box_values[b]},"y":{box_values[b + 1]},'
                    f'"width":{box_values[b + 2]},"height":{box_values[b + 3]},"rotation":0,'
                    f'"rectanglelabels":[{category}]}}{score}{meta}}}'
                )
                b += 4
                count = counts[n]
                n += 1
                if not count:
                    continue
                end = p + count
                open_id = f'{{"id":"{box_id}'
                kp_head = (f'","type":"keypointlabels","from_name":{kp_from},'
                           f'"parentID":"{box_id}",{common},"value":{{"x":')  # fmt: skip
                choice_open = f',{{"id":"{box_id}'
                regions.extend(
                    [
                        f'{open_id}{suffix_of[i]}{kp_head}{x},"y":{y}{tail}'
                        f"{label_end[i]}{closing}"
                        f"{f'{choice_open}{suffix_of[i]}{choice_tail}' if hidden else ''}"
                        for i, x, y, closing, hidden in zip(
                            point_index[p:end],
                            xs[p:end],
                            ys[p:end],
                            closings[p:end],
                            point_occluded[p:end],
                        )
                    ]
                )
                p = end
            result = ",".join(regions)
            if origin is None:
                annotations.append(
                    f'{{"result":[{result}],"was_cancelled":false,"ground_truth":false}}'
                )
                continue
            prediction_score = _prediction_score(instances)
            tail_score = "" if prediction_score is None else f',"score":{_text(prediction_score)}'
            predictions.append(
                f'{{"model_version":{_text(_model_version(origin))},"result":[{result}]'
                f"{tail_score}}}"
            )
        yield (
            f'{"[" if opening else ","}{{"id":{_text(head["id"])},"data":{_text(head["data"])},'
            f'"meta":{_text(head["meta"])},"annotations":[{",".join(annotations)}],'
            f'"predictions":[{",".join(predictions)}]}}'.encode()
        )
        opening = False
    _warn_clipped(numbers.clipped)
    yield b"[]" if opening else b"]"
