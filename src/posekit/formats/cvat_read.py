"""Reading CVAT for images 1.1 and CVAT for video 1.1 XML into a :class:`PoseDataset`.

See :mod:`posekit.formats.cvat` for the layout and the mapping of CVAT's states;
:mod:`posekit.formats.cvat_tracks` for the track rule. The parts: the document
(:mod:`~posekit.formats.cvat_xml`), its ``<meta>`` and the template
(:mod:`~posekit.formats.cvat_meta`), image shapes (:mod:`~posekit.formats.cvat_shapes`)
and tracks (:mod:`~posekit.formats.cvat_read_tracks`).
"""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.cvat_fast import fast_collect
from posekit.formats.cvat_meta import _layout, _read_meta
from posekit.formats.cvat_read_tracks import _read_track, _track_frames
from posekit.formats.cvat_shapes import _bulk_skeletons, _image_where, _shape_instance
from posekit.formats.cvat_xml import CvatFormatError, _collect, _Shape, frame_file_name
from posekit.gc_pause import gc_paused
from posekit.skeleton import Skeleton

__all__ = ["from_cvat"]

logger = logging.getLogger(__name__)


def from_cvat(
    xml: bytes | str | Element,
    skeleton: Skeleton | None = None,
    *,
    label: str | None = None,
    source: str = "CVAT XML",
) -> PoseDataset:
    """A CVAT for images / for video 1.1 document as a :class:`PoseDataset`.

    Args:
        xml: The XML text (bytes or str; entity declarations and external references
            are refused, see :func:`_collect`) or its root element.
        skeleton: Template to read into; keypoints are matched by name (skeleton
            sublabels) or by position (plain ``<points>``). None: the shipped
            preset with the file's sublabel names, else a template built from the
            file (names, SVG edges, uniform sigmas :data:`DEFAULT_SIGMA`).
        label: The CVAT label to read (default: the first skeleton label, else the
            label of the first ``<points>`` shape). Other labels' shapes are skipped.
        source: Name of the input for error messages.

    Returns:
        Images (``<image>`` elements) and, for tracks, one video whose frames with a
        visible track are images (``frame_000012.png``), every frame of a track
        computed by CVAT's rule (:mod:`posekit.formats.cvat_tracks`), with a
        :class:`TrackRecord` per track holding its keyframes.

    Raises:
        CvatFormatError: malformed XML, entities or external references, an unknown
            node, a points count that does not match the template, a frame outside
            the task; nothing is returned in part.
    """
    with gc_paused():
        return _from_cvat(xml, skeleton, label, source)


def _from_cvat(
    xml: bytes | str | Element,
    skeleton: Skeleton | None,
    label: str | None,
    source: str,
    *,
    fast: bool = True,
) -> PoseDataset:
    # fast=False: always the full expat parse (tests compare the two)
    doc = fast_collect(xml) if fast else None
    if doc is None:
        doc = _collect(xml, source)
    if doc.root_tag != "annotations":
        raise CvatFormatError(f"{source}: root element is <{doc.root_tag}>, expected <annotations>")
    meta = _read_meta(doc.meta, source)
    layout = _layout(doc, meta, skeleton, label, source)
    template = layout.skeleton
    records: list[ImageRecord] = []
    owners: list[tuple[int, _Shape]] = []
    skipped = 0
    for number, (attrs, shapes) in enumerate(doc.images):
        name = attrs.get("name")
        where = f"{source}: <image id={attrs.get('id')!r} name={name!r}>"
        if not name:
            raise CvatFormatError(f"{where}: missing 'name'")
        try:
            width, height = int(attrs.get("width", "")), int(attrs.get("height", ""))
            image_id = int(attrs.get("id", number))
        except ValueError:
            raise CvatFormatError(f"{where}: width, height and id must be integers") from None
        records.append(ImageRecord(name, width, height, id=image_id))
        for shape in shapes:
            if shape.tag == layout.kind and shape.get("label") == layout.label:
                owners.append((number, shape))
            elif shape.tag != "tag":
                skipped += 1
    if layout.kind == "skeleton":
        found = _bulk_skeletons(owners, doc.images, layout, source)
    else:
        found = [
            _shape_instance(shape, layout, _image_where(source, doc.images[i][0], shape))
            for i, shape in owners
        ]
    per_image: list[list[Instance]] = [[] for _ in records]
    for (i, _), instance in zip(owners, found):
        per_image[i].append(instance)
    images = [LabeledImage(r, inst) for r, inst in zip(records, per_image)]
    videos: list[VideoRecord] = []
    tracks: list[TrackRecord] = []
    track_items = [(a, s) for a, s in doc.tracks if a.get("label") == layout.label]
    skipped += len(doc.tracks) - len(track_items)
    if track_items or meta.mode == "interpolation":
        start, step, n = _track_frames(doc, meta)
        video_name = meta.name or meta.source or "video"
        width = meta.width if meta.width is not None else 0
        height = meta.height if meta.height is not None else 0
        video = VideoRecord(
            name=video_name,
            width=width,
            height=height,
            frame_count=start + (n - 1) * step + 1 if n else 0,
            file_name=meta.source,
            # a task on part of a video (start_frame, frame_filter step) keeps its grid
            extra={"cvat": {"start_frame": start, "step": step, "size": n}}
            if start or step != 1
            else {},
        )
        by_frame: dict[int, list[Instance]] = {}
        for number, (attrs, shapes) in enumerate(track_items):
            result = _read_track(attrs, shapes, number, layout, (start, step, n), source)
            if result is None:
                continue
            result.record.video = video_name
            tracks.append(result.record)
            for frame, instance in zip(result.frames, result.instances):
                by_frame.setdefault(frame, []).append(instance)
        ids = [t.track_id for t in tracks]
        if len(set(ids)) != len(ids):
            raise CvatFormatError(f"{source}: two tracks have the same id")
        videos.append(video)
        for frame in sorted(by_frame):
            record = ImageRecord(
                frame_file_name(frame), width, height, video=video_name, frame_index=frame
            )
            images.append(LabeledImage(record, by_frame[frame]))
    if skipped:
        logger.info("%s: skipped %d shapes/tracks that are not label %r", source, skipped,
                    layout.label)  # fmt: skip
    return PoseDataset(skeleton=template, images=images, videos=videos, tracks=tracks)
