"""The video part of exports: frames as images of their videos, tracks, interpolation.

:func:`add_videos` completes the :class:`~posekit.dataset.PoseDataset` that
:func:`posekit.store.exports.project_to_dataset` builds:

* every frame item becomes an image with ``video``, ``frame_index`` and ``timestamp``
  (also written as the image field ``timestamp``, seconds),
  and each video a :class:`~posekit.dataset.VideoRecord` (PoseTrack ``vid_id``: the
  imported one, else the video's name);
* frames a track is interpolated on (between its keyframes, see
  :mod:`posekit.store.tracks`) are written too: the interpolated instance gets
  ``extra["posekit_interpolated"] = True`` and frames without an item get an image;
* tracks become :class:`~posekit.dataset.TrackRecord` s (keyframes, outside frames,
  label), and the dataset's ``extra["posekit_tracks"]`` carries them in the file.

Reading such a file back (:func:`restore_track_meta`) drops the interpolated
instances again (they are recomputed from the keyframes) and restores keyframes,
outside frames and labels: export -> import -> export writes the same file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.store.videos import frame_file_name

if TYPE_CHECKING:
    from posekit.store.records import Item
    from posekit.store.workspace import Workspace

__all__ = ["INTERPOLATED_KEY", "TRACKS_KEY", "add_videos", "restore_track_meta"]

#: ``Instance.extra`` flag of an exported interpolated instance.
INTERPOLATED_KEY = "posekit_interpolated"
#: Top-level field of an exported file: the tracks' keyframes, outside frames, labels.
TRACKS_KEY = "posekit_tracks"


def _vid_id(video: Any) -> str:
    return str(video.extra.get("vid_id", video.file_name))


def add_videos(
    ws: Workspace,
    dataset: PoseDataset,
    items: Sequence[Item],
    statuses: Sequence[str],
    *,
    interpolate: bool = True,
) -> None:
    """Fill ``dataset`` (built from ``items``, image for image) with its videos,
    tracks and interpolated frames; a dataset without frame items is left as it is."""
    from posekit.tracking.interpolation import interpolate_track

    frames = [(item, image) for item, image in zip(items, dataset.images) if item.video_id]
    if not frames:
        return
    videos = {vid: ws.get_video(vid) for vid in sorted({item.video_id for item, _ in frames})}
    stamps = {vid: video.timestamps() for vid, video in videos.items()}
    by_frame: dict[tuple[int, int], LabeledImage] = {}
    for item, labeled in frames:
        record = labeled.image
        video = videos[item.video_id]
        record.video = _vid_id(video)
        record.frame_index = int(item.frame_index)
        record.timestamp = float(stamps[item.video_id][item.frame_index])
        by_frame[item.video_id, int(item.frame_index)] = labeled
    next_image = max((li.image.id or 0 for li in dataset.images), default=0) + 1
    next_ann = max((i.id or 0 for li in dataset.images for i in li.instances), default=0) + 1
    meta = []
    for video_id, video in videos.items():
        dataset.videos.append(
            VideoRecord(
                name=_vid_id(video), width=video.width, height=video.height,
                frame_count=video.frame_count, fps=video.fps or None,
                file_name=video.file_name, id=video_id,
            )
        )  # fmt: skip
        for track in ws.list_tracks(video_id):
            dataset.tracks.append(
                TrackRecord(
                    video=_vid_id(video), track_id=track.track_id,
                    keyframes=set(track.keyframes), outside=set(track.outside), label=track.label,
                )
            )  # fmt: skip
            meta.append(
                {"vid_id": _vid_id(video), "track_id": track.track_id, "label": track.label,
                 "keyframes": list(track.keyframes), "outside": list(track.outside)}
            )  # fmt: skip
            if not interpolate or not track.keyframes:
                continue
            keyframes = ws.track_keyframes(video_id, track.track_id)
            outside = [f for f in track.outside if f not in keyframes]
            stored = set(track.frames)
            for frame, found in interpolate_track(
                keyframes, frame_count=video.frame_count, outside=outside
            ).items():
                if found.keyframe or frame in stored:
                    continue
                inst = found.instance
                if inst.status not in statuses:
                    continue
                labeled = by_frame.get((video_id, frame))
                if labeled is None:
                    name = frame_file_name(video.file_name, frame)
                    record = ImageRecord(
                        name, video.width, video.height, id=next_image, video=_vid_id(video),
                        frame_index=frame, timestamp=float(stamps[video_id][frame]),
                        extra={"timestamp": float(stamps[video_id][frame])},
                    )  # fmt: skip
                    next_image += 1
                    labeled = by_frame[video_id, frame] = LabeledImage(record, [])
                    dataset.images.append(labeled)
                labeled.instances.append(
                    inst.copy(
                        id=next_ann, track_id=track.track_id,
                        extra={**inst.extra, INTERPOLATED_KEY: True},
                    )
                )  # fmt: skip
                next_ann += 1
    dataset.images.sort(
        key=lambda li: (li.image.video is not None, li.image.video or "", li.image.frame_index or 0)
    )
    dataset.extra[TRACKS_KEY] = meta


def restore_track_meta(dataset: PoseDataset) -> None:
    """Undo :func:`add_videos` on a dataset read from a file: derive videos from
    PoseTrack image fields when the reader did not, drop interpolated instances and
    take keyframes / outside frames / labels from ``extra["posekit_tracks"]``."""
    if not dataset.videos:
        _videos_from_image_fields(dataset)
    for labeled in dataset.images:
        if any(inst.extra.get(INTERPOLATED_KEY) for inst in labeled.instances):
            labeled.instances = [i for i in labeled.instances if not i.extra.get(INTERPOLATED_KEY)]
    meta = dataset.extra.pop(TRACKS_KEY, None)
    if not isinstance(meta, list):
        return
    tracks = {(t.video, t.track_id): t for t in dataset.tracks}
    for entry in meta:
        if not isinstance(entry, dict) or "vid_id" not in entry or "track_id" not in entry:
            continue
        key = (str(entry["vid_id"]), int(entry["track_id"]))
        track = tracks.get(key) or TrackRecord(video=key[0], track_id=key[1])
        track.keyframes = {int(f) for f in entry.get("keyframes", [])}
        track.outside = {int(f) for f in entry.get("outside", [])}
        track.label = entry.get("label")
        tracks[key] = track
    dataset.tracks = sorted(tracks.values(), key=lambda t: (t.video, t.track_id))


def _videos_from_image_fields(dataset: PoseDataset) -> None:
    """Videos from ``vid_id`` / ``frame_id`` / ``nframes`` image fields (a PoseTrack
    layout file read as plain COCO)."""
    videos: dict[str, VideoRecord] = {}
    position: dict[str, int] = {}
    for labeled in dataset.images:
        record = labeled.image
        vid = record.extra.get("vid_id")
        if vid is None:
            continue
        vid = str(vid)
        count = position.get(vid, 0)
        position[vid] = count + 1
        frame_id = record.extra.get("frame_id")
        stem = record.file_name.rsplit("/", 1)[-1].split(".", 1)[0]
        if type(frame_id) is int and vid.isdigit() and frame_id // 10000 == int("1" + vid):
            frame = frame_id % 10000
        elif stem.isdigit():
            frame = int(stem)
        else:
            frame = count
        record.video, record.frame_index = vid, frame
        video = videos.get(vid)
        if video is None:
            video = videos[vid] = VideoRecord(vid, record.width, record.height)
        nframes = record.extra.get("nframes")
        if type(nframes) is int:
            video.frame_count = max(video.frame_count or 0, nframes)
    for video in videos.values():
        if video.frame_count is None:
            video.frame_count = 1 + max(
                li.image.frame_index or 0 for li in dataset.images if li.image.video == video.name
            )
    dataset.videos = list(videos.values())
    tracks: dict[tuple[str, int], TrackRecord] = {}
    for labeled in dataset.images:
        if labeled.image.video is None:
            continue
        for inst in labeled.instances:
            if inst.track_id is None:
                continue
            key = (labeled.image.video, int(inst.track_id))
            track = tracks.setdefault(key, TrackRecord(video=key[0], track_id=key[1]))
            track.keyframes.add(int(labeled.image.frame_index or 0))
    dataset.tracks = sorted(tracks.values(), key=lambda t: (t.video, t.track_id))
