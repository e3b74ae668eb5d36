"""Drawing skeletons on images.

Conventions (all colours RGB, images RGB ``uint8``):

* visible keypoints (v=2): filled discs in the template's keypoint colour; edges
  between two visible points: solid lines in the template's edge colour;
* occluded keypoints (v=1): hollow grey rings; an edge touching an occluded point:
  grey and dashed;
* not-labeled keypoints (v=0), and points whose ``keypoint_scores`` are below
  ``min_keypoint_score``: not drawn, nor any edge touching them;
* boxes: solid for manual/accepted instances, dashed for predicted ones (review
  status ``predicted``), with the instance score above the box;
* line width and radius grow with the image size, so that drawings stay readable
  from 320 px thumbnails to 4000 px photos; everything is anti-aliased.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np

from posekit.core import OCCLUDED, VISIBLE, Instance
from posekit.media.paths import UnsafePathError, safe_relative_path
from posekit.skeleton import Skeleton

__all__ = [
    "BOX_COLOR",
    "OCCLUDED_COLOR",
    "PREDICTED_BOX_COLOR",
    "RenderError",
    "draw_instances",
    "render_coco",
    "style_for_size",
]

log = logging.getLogger(__name__)

OCCLUDED_COLOR: tuple[int, int, int] = (160, 160, 160)
BOX_COLOR: tuple[int, int, int] = (255, 220, 0)
PREDICTED_BOX_COLOR: tuple[int, int, int] = (255, 0, 255)
_TEXT_COLOR = (0, 0, 0)
# Sub-pixel precision for cv2 drawing: coordinates are multiplied by 2**_SHIFT.
_SHIFT = 4
_ONE = 1 << _SHIFT


class RenderError(ValueError):
    """Drawing inputs are malformed; the message names the problem."""


def style_for_size(width: int, height: int, thickness: int | None = None) -> tuple[int, int]:
    """``(line_thickness, keypoint_radius)`` in pixels for an image of this size.

    About 0.45 % of the longer side for lines (2 px at 320 px, 18 px at 4000 px) and
    1.5x that for keypoint radii.
    """
    if thickness is None:
        thickness = max(2, round(max(width, height) * 0.0045))
    if thickness < 1:
        raise RenderError(f"thickness must be at least 1, got {thickness}")
    radius = max(thickness + 1, round(thickness * 1.5))
    return int(thickness), int(radius)


def _fixed(point: np.ndarray) -> tuple[int, int]:
    return (round(float(point[0]) * _ONE), round(float(point[1]) * _ONE))


def _dashed_line(
    image: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    color: tuple[int, int, int],
    thickness: int,
) -> None:
    length = float(np.hypot(*(end - start)))
    # anti-aliasing blurs a 1 px line's ends: keep dashes and gaps at least 6 and 4 px
    unit = max(thickness, 2)
    dash, gap = 3.0 * unit, 2.0 * unit
    if length <= dash:
        cv2.line(image, _fixed(start), _fixed(end), color, thickness, cv2.LINE_AA, _SHIFT)
        return
    direction = (end - start) / length
    position = 0.0
    while position < length:
        stop = min(position + dash, length)
        cv2.line(
            image,
            _fixed(start + direction * position),
            _fixed(start + direction * stop),
            color,
            thickness,
            cv2.LINE_AA,
            _SHIFT,
        )
        position = stop + gap


def _dashed_rectangle(
    image: np.ndarray, box: np.ndarray, color: tuple[int, int, int], thickness: int
) -> None:
    x1, y1, x2, y2 = (float(v) for v in box)
    corners = [np.array(p, dtype=np.float64) for p in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))]
    for a, b in zip(corners, corners[1:] + corners[:1]):
        _dashed_line(image, a, b, color, thickness)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise RenderError(f"image: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise RenderError(
            f"image: expected an RGB uint8 array of shape (H, W, 3), got {image.dtype} "
            f"{image.shape}"
        )


def draw_instances(
    image: np.ndarray,
    instances: Sequence[Instance],
    skeleton: Skeleton,
    *,
    draw_boxes: bool = True,
    draw_scores: bool = True,
    min_keypoint_score: float = 0.0,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw instances on a copy of ``image``.

    Args:
        image: ``(H, W, 3) uint8`` RGB image; not modified.
        instances: Instances on ``skeleton`` (``K`` keypoints each).
        skeleton: Template giving edges and colours.
        draw_boxes: Draw each instance's box (or the box around its labeled points).
        draw_scores: Write the instance score above the box, when there is one.
        min_keypoint_score: Points whose ``keypoint_scores`` are below this are not drawn.
        thickness: Line thickness in pixels; by default scaled with the image size.

    Returns:
        A new ``(H, W, 3) uint8`` RGB image.

    Raises:
        RenderError: The image is not RGB uint8, or an instance has a different number
            of keypoints than the template.

    Example:
        >>> import numpy as np
        >>> from posekit import Instance, get_preset
        >>> coco = get_preset("coco17")
        >>> inst = Instance(np.full((17, 2), 20.0), np.full(17, 2))
        >>> out = draw_instances(np.zeros((64, 64, 3), np.uint8), [inst], coco)
        >>> out.shape
        (64, 64, 3)
    """
    _check_image(image)
    canvas = np.ascontiguousarray(image).copy()
    height, width = canvas.shape[:2]
    line, radius = style_for_size(width, height, thickness)
    keypoint_colors = [tuple(int(c) for c in color) for color in skeleton.keypoint_colors]
    edge_colors = [tuple(int(c) for c in color) for color in skeleton.edge_colors]
    for n, inst in enumerate(instances):
        if inst.num_keypoints != skeleton.num_keypoints:
            raise RenderError(
                f"instance #{n} has {inst.num_keypoints} keypoints but template "
                f"{skeleton.name!r} has {skeleton.num_keypoints}"
            )
        visibility = inst.visibility.copy()
        if inst.keypoint_scores is not None and min_keypoint_score > 0:
            visibility[inst.keypoint_scores < min_keypoint_score] = 0
        points = inst.keypoints.astype(np.float64)

        if draw_boxes:
            box = inst.bbox_or_keypoint_box()
            if box is not None:
                _draw_box(canvas, inst, box, line, draw_scores)

        # edges first, so that keypoint discs sit on top of them
        for (a, b), color in zip(skeleton.edge_index, edge_colors):
            va, vb = visibility[a], visibility[b]
            if va == 0 or vb == 0:
                continue
            if va == VISIBLE and vb == VISIBLE:
                cv2.line(
                    canvas, _fixed(points[a]), _fixed(points[b]), color, line, cv2.LINE_AA, _SHIFT
                )
            else:
                _dashed_line(canvas, points[a], points[b], OCCLUDED_COLOR, line)
        for k in np.flatnonzero(visibility > 0):
            center = _fixed(points[k])
            if visibility[k] == OCCLUDED:
                ring = max(1, line // 2 + 1)
                cv2.circle(canvas, center, radius * _ONE, OCCLUDED_COLOR, ring, cv2.LINE_AA, _SHIFT)
            else:
                cv2.circle(
                    canvas, center, radius * _ONE, keypoint_colors[k], -1, cv2.LINE_AA, _SHIFT
                )
    return canvas


def _draw_box(
    canvas: np.ndarray, inst: Instance, box: np.ndarray, line: int, draw_scores: bool
) -> None:
    box_line = max(1, line // 2)
    predicted = inst.status == "predicted"
    color = PREDICTED_BOX_COLOR if predicted else BOX_COLOR
    if predicted:
        _dashed_rectangle(canvas, box, color, box_line)
    else:
        cv2.rectangle(
            canvas,
            _fixed(box[:2]),
            _fixed(box[2:]),
            color,
            box_line,
            cv2.LINE_AA,
            _SHIFT,
        )
    if draw_scores and inst.score is not None:
        text = f"{inst.score:.2f}"
        scale = max(0.35, line * 0.25)
        text_thickness = max(1, line // 2)
        (text_w, text_h), baseline = cv2.getTextSize(
            text, cv2.FONT_HERSHEY_SIMPLEX, scale, text_thickness
        )
        x = round(float(box[0]))
        y = round(float(box[1]))
        top = y - text_h - baseline - 2
        if top < 0:  # no room above the box: write inside it
            top = y
        cv2.rectangle(canvas, (x, top), (x + text_w + 2, top + text_h + baseline + 2), color, -1)
        cv2.putText(
            canvas,
            text,
            (x + 1, top + text_h + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            _TEXT_COLOR,
            text_thickness,
            cv2.LINE_AA,
        )


# ------------------------------------------------------------------ files
def _safe_relative(file_name: str) -> PurePosixPath:
    """The image's path relative to the image root (see :func:`safe_relative_path`)."""
    try:
        return safe_relative_path(file_name)
    except UnsafePathError as exc:
        raise RenderError(
            f"image file name {file_name!r} is not a safe relative path: {exc}"
        ) from None


def _load_dataset(dataset_or_path: Any, skeleton: Skeleton | None) -> Any:
    if isinstance(dataset_or_path, str | Path):
        # imported here so that ``import posekit.render`` stays light
        from posekit.formats.coco import read_coco

        return read_coco(Path(dataset_or_path), skeleton)
    return dataset_or_path


def render_coco(
    dataset_or_path: Any,
    image_root: Path | Mapping[str, Path],
    out_dir: Path,
    skeleton: Skeleton | None = None,
    **draw_options: Any,
) -> list[Path]:
    """Draw every annotated image of a COCO dataset into ``out_dir``.

    Output files mirror the images' relative ``file_name`` paths under ``out_dir``
    (``.jpg`` and ``.png`` names kept, other formats written as ``.png``). The input
    images are never overwritten: an output that would resolve to an input file raises.

    Args:
        dataset_or_path: A ``posekit.dataset.PoseDataset`` (``images``: labeled
            images with ``image.file_name`` and ``instances``; ``skeleton``) or a path
            to a COCO keypoints file.
        image_root: Folder the ``file_name`` paths are relative to, or a mapping
            from ``file_name`` to the image's path (as ``posekit predict`` has).
        out_dir: Output folder (created).
        skeleton: Template to draw with; defaults to the dataset's.
        **draw_options: Passed to :func:`draw_instances`.

    Returns:
        Paths of the written images, in dataset order.

    Raises:
        RenderError: Unsafe file names, an output path equal to an input, no template.
        posekit.media.image.ImageError: An image cannot be read.
    """
    from posekit.media.image import load_image

    dataset = _load_dataset(dataset_or_path, skeleton)
    template = skeleton if skeleton is not None else getattr(dataset, "skeleton", None)
    if template is None:
        raise RenderError("no skeleton template: pass skeleton=... or a dataset that has one")
    sources = image_root if isinstance(image_root, Mapping) else None
    root = None if sources is not None else Path(image_root)
    out_dir = Path(out_dir)
    written: list[Path] = []
    for labeled in dataset.images:
        record = labeled.image
        rel = _safe_relative(record.file_name)
        if sources is not None:
            if record.file_name not in sources:
                raise RenderError(f"{record.file_name!r}: no image path given for this file name")
            source = Path(sources[record.file_name])
        else:
            source = root / Path(*rel.parts)
        target = out_dir / Path(*rel.parts)
        if target.suffix.lower() not in {".jpg", ".jpeg", ".png"}:
            target = target.with_suffix(".png")
        if source.exists() and target.resolve() == source.resolve():
            raise RenderError(
                f"{target}: output would overwrite the input image; choose another out_dir"
            )
        rgb = load_image(source)
        expected = (getattr(record, "width", None), getattr(record, "height", None))
        if None not in expected and expected != (rgb.shape[1], rgb.shape[0]):
            log.warning(
                "%s: image is %dx%d but the dataset says %dx%d",
                source,
                rgb.shape[1],
                rgb.shape[0],
                *expected,
            )
        drawn = draw_instances(rgb, list(labeled.instances), template, **draw_options)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(target), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)):
            raise RenderError(f"{target}: could not write image")
        written.append(target)
    log.info("rendered %d images into %s", len(written), out_dir)
    return written
