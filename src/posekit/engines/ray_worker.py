"""The worker side of the Ray engine: the model actor and the result encoding.

Workers import only this module (no store, no Ray import at module level), so a
worker needs posekit with its model extras, not the project database.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from posekit.core import Instance
from posekit.media import load_image
from posekit.media.paths import safe_relative_name
from posekit.models.base import Detector, PoseEstimator
from posekit.pipeline.options import AutolabelOptions
from posekit.pipeline.run import FrameError, WorkUnit, models_device, run_pipeline
from posekit.skeleton import Skeleton

__all__ = [
    "FRAMES_PER_BATCH",
    "MEDIA_ROOT_ENV",
    "ModelFactory",
    "PoseWorker",
    "VideoWorker",
    "decode_instances",
    "encode_instances",
]

log = logging.getLogger(__name__)

#: Environment variable naming, on the workers, where the workspace's media folder is.
MEDIA_ROOT_ENV = "POSEKIT_MEDIA_ROOT"

#: Finished frames of a video a :class:`VideoWorker` sends back per output batch.
FRAMES_PER_BATCH = 64

#: ``factory() -> (detector or None, pose estimator)``, called once in each worker.
ModelFactory = Callable[[], "tuple[Detector | None, PoseEstimator]"]


# ------------------------------------------------------------------ transport
def encode_instances(instances: Sequence[Instance]) -> bytes:
    """Instances as compact JSON for the trip from a worker to the driver.

    float32 values are written as their shortest repr, so decoding restores them
    bit for bit.
    """
    rows = [
        {
            "keypoints": inst.keypoints,
            "visibility": inst.visibility,
            "keypoint_scores": inst.keypoint_scores,
            "box": inst.box,
            "score": inst.score,
            "source": inst.source,
            "status": inst.status,
            "track_id": inst.track_id,
            "iscrowd": inst.iscrowd,
            "area": inst.area,
            "segmentation": inst.segmentation,
            "extra": inst.extra,
        }
        for inst in instances
    ]
    return orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY)


def decode_instances(data: bytes) -> list[Instance]:
    """The instances of :func:`encode_instances`."""
    out = []
    for row in orjson.loads(data):
        k = len(row["visibility"])
        row["keypoints"] = np.asarray(row["keypoints"], np.float32).reshape(k, 2)
        for name in ("keypoint_scores", "box"):
            if row[name] is not None:
                row[name] = np.asarray(row[name], np.float32)
        out.append(Instance(**row))
    return out


# ------------------------------------------------------------------ worker side
def _load_media(media_root: Path, media_path: str):
    if not media_path:
        raise FrameError("no media file (registered only)")
    return load_image(media_root / safe_relative_name(media_path))


class _CollectingSink:
    """A :class:`~posekit.pipeline.run.PredictionSink` keeping one batch in memory."""

    def __init__(self) -> None:
        self.results: dict[int, list[Instance] | str] = {}

    def put(self, key: Hashable, frame: np.ndarray, instances: list[Instance]) -> None:
        self.results[int(key)] = instances  # type: ignore[call-overload]

    def fail(self, key: Hashable, reason: str) -> None:
        self.results[int(key)] = reason  # type: ignore[call-overload]

    def commit(self) -> None:
        pass

    def flush(self) -> None:
        pass


def _registry_models(options: AutolabelOptions, default_device: str | None):
    from posekit.models.registry import create_detector, create_pose_estimator

    detector_options = options.model_options("detector")
    pose_options = options.model_options("pose")
    if default_device is not None:
        detector_options.setdefault("device", default_device)
        pose_options.setdefault("device", default_device)
    detector = create_detector(options.detector, **detector_options)
    return detector, create_pose_estimator(options.pose, **pose_options)


class PoseWorker:
    """The Ray Data callable class: loads the models once, then labels batches.

    Args:
        options: :meth:`AutolabelOptions.to_dict` of the run.
        template: :meth:`Skeleton.to_dict` of the project's template.
        media_root: The driver's media folder (``POSEKIT_MEDIA_ROOT`` on the worker
            overrides it).
        model_factory: Creates ``(detector, pose)`` instead of the model registry
            (tests, custom backends); must be picklable.
        before_batch: Test hook, ``before_batch(item_ids)`` before every batch.

    Each input row is one work unit, a pipeline batch: columns ``item_ids`` and
    ``media_paths`` (lists; later, one video's frames). The result has one row
    per item: ``item_id``, ``error`` (empty when labeled), ``instances``
    (:func:`encode_instances`) and ``device``.
    """

    def __init__(
        self,
        options: dict[str, Any],
        template: dict[str, Any],
        media_root: str,
        model_factory: ModelFactory | None = None,
        before_batch: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.options = AutolabelOptions.from_mapping(options)
        self.template = Skeleton.from_dict(template)
        self.media_root = Path(os.environ.get(MEDIA_ROOT_ENV) or media_root)
        self.before_batch = before_batch
        if model_factory is not None:
            self.detector, self.pose = model_factory()
        else:
            # Ray hides the GPUs an actor did not reserve, so "cuda" is this worker's GPU.
            device = "cuda" if self.options.gpus_per_worker > 0 else None
            self.detector, self.pose = _registry_models(self.options, device)
        self.device = models_device(self.detector, self.pose)
        log.info("posekit Ray worker %d ready on %s", os.getpid(), self.device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids: list[int] = []
        errors: list[str] = []
        blobs: list[bytes] = []
        for unit_ids, unit_paths in zip(batch["item_ids"], batch["media_paths"]):
            unit_ids = [int(i) for i in unit_ids]
            if self.before_batch is not None:
                self.before_batch(unit_ids)
            units = [
                WorkUnit(item_id, partial(_load_media, self.media_root, str(path)))
                for item_id, path in zip(unit_ids, unit_paths)
            ]
            sink = _CollectingSink()
            run_pipeline(units, sink, self.detector, self.pose, self.template, self.options)
            for item_id in unit_ids:
                result = sink.results.get(item_id, "no result from the pipeline")
                ids.append(item_id)
                errors.append(result if isinstance(result, str) else "")
                blobs.append(b"" if isinstance(result, str) else self._encode(result))
        return {
            "item_id": np.asarray(ids, np.int64),
            "error": np.asarray(errors, object),
            "instances": np.asarray(blobs, object),
            "device": np.asarray([self.device] * len(ids), object),
        }

    def _encode(self, instances: list[Instance]) -> bytes:
        # The driver's writer names the source from the pose model, as the local engine does.
        source = f"model:{self.pose.name}"
        return encode_instances(
            [i if i.source.startswith("model:") else i.copy(source=source) for i in instances]
        )


class VideoWorker(PoseWorker):
    """The Ray Data callable class for videos: one input row is one whole video
    (tracking needs its frames in order, on one worker).

    Input columns: ``video_id``, ``media_path`` (the file, or the frame folder, under
    the media root), ``kind`` (``"file"`` or ``"frames"``), ``fps``, ``index`` (the
    stored decode index as JSON, ``""`` for frame folders). It runs
    :func:`posekit.pipeline.video.run_tracked`, the local engine's code, and yields
    the finished frames as they come (the pipeline runs in a thread of the worker),
    :data:`FRAMES_PER_BATCH` per output batch, so memory on the worker does not grow
    with the video's length; then one row with
    ``end`` true: ``info`` holds, as JSON, the outside marks, the frame failures, the
    sampled frames processed and ``error`` (the video could not be read). Columns:
    ``video_id``, ``frame_index``, ``instances`` (:func:`encode_instances`), ``end``,
    ``info``, ``device``.
    """

    def __call__(self, batch: dict[str, np.ndarray]):  # type: ignore[override]
        for n in range(len(batch["video_id"])):
            yield from self._video(
                int(batch["video_id"][n]),
                str(batch["media_path"][n]),
                str(batch["kind"][n]),
                float(batch["fps"][n]),
                str(batch["index"][n]),
            )

    def _video(self, video_id: int, media_path: str, kind: str, fps: float, index: str):
        from posekit.media.video import open_frame_folder, open_video
        from posekit.pipeline.video import run_tracked

        info: dict[str, Any] = {"outside": {}, "failures": [], "total": 0, "error": ""}
        if self.before_batch is not None:
            self.before_batch([video_id])
        try:
            path = self.media_root / safe_relative_name(media_path)
            if kind == "frames":
                opened = open_frame_folder(path, fps)
            else:
                opened = open_video(path, index=orjson.loads(index) if index else None)
        except Exception as exc:  # reported for this video; the worker goes on
            info["error"] = str(exc)
            yield self._rows(video_id, [], info)
            return
        # The pipeline runs in a thread and hands finished frames over in chunks through
        # a small queue (it waits while the driver is behind), so this generator streams.
        chunks: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=4)

        def produce() -> None:
            chunk: list[tuple[int, bytes]] = []

            def on_frame(frame_index: int, instances: list[Instance]) -> None:
                chunk.append((frame_index, self._encode(instances)))
                if len(chunk) >= FRAMES_PER_BATCH:
                    chunks.put(("frames", list(chunk)))
                    chunk.clear()

            try:
                summary, sink = run_tracked(
                    opened, self.detector, self.pose, self.template, self.options, on_frame
                )
                chunks.put(("frames", list(chunk)))
                chunks.put(("end", (summary, sink)))
            except BaseException as exc:  # handed to the generator, raised there
                chunks.put(("error", exc))

        thread = threading.Thread(target=produce, name="posekit-video", daemon=True)
        thread.start()
        try:
            while True:
                kind_of, value = chunks.get()
                if kind_of == "frames":
                    if value:
                        yield self._rows(video_id, value, None)
                    continue
                if kind_of == "error":
                    raise value
                summary, sink = value
                break
        finally:
            thread.join()
            opened.close()
        info["outside"] = {str(t): marks for t, marks in sink.close_tracks().items()}
        info["failures"] = [[int(f), str(reason)] for f, reason in summary.failures]
        info["total"] = int(summary.total)
        yield self._rows(video_id, [], info)

    def _rows(
        self, video_id: int, frames: list[tuple[int, bytes]], info: dict[str, Any] | None
    ) -> dict[str, np.ndarray]:
        count = len(frames) + (info is not None)
        return {
            "video_id": np.full(count, video_id, np.int64),
            "frame_index": np.asarray([f for f, _ in frames] + [-1] * (info is not None), np.int64),
            "instances": np.asarray([b for _, b in frames] + [b""] * (info is not None), object),
            "end": np.asarray([False] * len(frames) + [True] * (info is not None), bool),
            "info": np.asarray(
                [""] * len(frames) + [orjson.dumps(info).decode()] * (info is not None), object
            ),
            "device": np.asarray([self.device] * count, object),
        }
