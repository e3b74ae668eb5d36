"""CVAT for images 1.1 and CVAT for video 1.1 XML: pure ``bytes <-> PoseDataset``
functions (:func:`from_cvat`, :func:`to_cvat`), thin file I/O on top.

Layout (CVAT's documented XML format):

* ``<meta><task>`` (or ``<job>``, or ``<project>`` with ``<tasks>``) holds the
  labels: the skeleton label (``<type>skeleton</type>``) with its sublabels
  (labels whose ``<parent>`` is the skeleton, one per keypoint, in keypoint
  order) and the escaped SVG that names the nodes
  (``<circle data-node-id data-label-name>``) and the edges
  (``<line data-type="edge" data-node-from data-node-to>``, node ids).
  ``<size>``, ``<start_frame>``, ``<stop_frame>`` and ``<frame_filter>step=N``
  give the task's frames; ``<original_size>`` the frame size of a video.
* CVAT for images: ``<image id name width height>`` with one
  ``<skeleton label>`` per person holding one ``<points label outside occluded
  points="x,y"/>`` per keypoint.
* CVAT for video: ``<track id label>`` with ``<skeleton frame keyframe>`` shapes
  holding ``<points label outside occluded keyframe points="x,y"/>``. Every point
  has its own keyframes; the frames in between follow CVAT's rule
  (:mod:`posekit.formats.cvat_tracks`: linear between a point's keyframes,
  nothing after outside, a track not closed by outside runs to the task's end).
* Plain ``<points>`` shapes and tracks (no skeleton: K points in one shape, matched
  to the template by position) are read too, and written with
  ``layout="points"`` (images only; the visibility goes in a
  ``posekit_visibility`` text attribute, read back when present).

States: ``outside`` -> not labeled (0), ``occluded`` -> occluded (1), else
visible (2). A shape's ``source="manual"`` -> ``Instance.source == "manual"``,
any other source -> ``"model:cvat"``.

What CVAT cannot carry (lost on export): boxes (instances read back with
``box=None``), scores, review status (rejected instances are not written),
crowd regions (not written), instance ids, ``extra`` fields; track ids on still
images (CVAT for images has none); a video frame without a visible point (an
instance whose every point is not labeled is not written). Video frames are
images named ``frame_000012.png`` (CVAT's dataset-export names); frames with
no track present are not listed.

Import materialises every frame of a track (CVAT's interpolation) as an
instance; :class:`~posekit.dataset.TrackRecord` says which frames are keyframes
(any point keyframed there) and keeps the per-point keyframes in
``extra["cvat"]``, so that an unchanged track is written back with exactly the
same keyframes. A track made in posekit is written with keyframes at its
``TrackRecord.keyframes`` (every frame when it has none) and outside keyframes
where it leaves the view; a frame CVAT would interpolate differently from the
instance (beyond 0.001 px) is written as a keyframe too, so nothing is lost.

Example:
    >>> from posekit.formats.cvat import from_cvat, to_cvat
    >>> xml = b'''<annotations><version>1.1</version>
    ... <image id="0" name="a.jpg" width="64" height="48">
    ...   <points label="hand" points="1,2;3,4" occluded="0"/></image></annotations>'''
    >>> dataset = from_cvat(xml)
    >>> dataset.images[0].instances[0].keypoints.tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    >>> from_cvat(to_cvat(dataset)).images[0].instances[0].visibility.tolist()
    [2, 2]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from posekit.dataset import PoseDataset
from posekit.formats.cvat_meta import DEFAULT_SIGMA
from posekit.formats.cvat_read import from_cvat
from posekit.formats.cvat_tracks import PointKeyframes, element_states
from posekit.formats.cvat_write import to_cvat
from posekit.formats.cvat_xml import (
    CVAT_STASH_KEY,
    VISIBILITY_ATTRIBUTE,
    CvatFormatError,
    frame_file_name,
    parse_cvat_xml,
)
from posekit.formats.files import atomic_write_bytes
from posekit.skeleton import Skeleton

__all__ = [
    "CVAT_STASH_KEY",
    "DEFAULT_SIGMA",
    "VISIBILITY_ATTRIBUTE",
    "CvatFormatError",
    "PointKeyframes",
    "element_states",
    "frame_file_name",
    "from_cvat",
    "parse_cvat_xml",
    "read_cvat",
    "to_cvat",
    "write_cvat",
]


def read_cvat(
    path: str | os.PathLike[str], skeleton: Skeleton | None = None, *, label: str | None = None
) -> PoseDataset:
    """Read a CVAT XML file (``annotations.xml``), or the ``annotations.xml`` in a folder
    (an unpacked CVAT export); see :func:`from_cvat`.

    Raises:
        CvatFormatError: invalid XML or content (the message starts with the path).
        OSError: the file cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "annotations.xml"
    return from_cvat(path.read_bytes(), skeleton, label=label, source=str(path))


def write_cvat(
    dataset: PoseDataset,
    path: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
    **options: Any,
) -> Path:
    """Write ``dataset`` as a CVAT XML file, atomically (see :func:`to_cvat` for
    ``options``: ``mode``, ``layout``, ``label``, ``task_name``).

    Args:
        dataset: What to write.
        path: The XML file to write (a folder: its ``annotations.xml``).
        media: Not used: a CVAT annotation file names its images and does not carry
            them (the argument exists because every format writer takes it).

    Returns:
        The written file.
    """
    del media
    path = Path(path)
    if path.is_dir():
        path = path / "annotations.xml"
    payload = to_cvat(dataset, **options)  # raises before anything is written
    return atomic_write_bytes(path, payload)
