"""Rendering: skeletons drawn on images (visible, occluded, boxes, scores)."""

from posekit.render.draw import (
    BOX_COLOR,
    OCCLUDED_COLOR,
    PREDICTED_BOX_COLOR,
    RenderError,
    draw_instances,
    render_coco,
    style_for_size,
)

__all__ = [
    "BOX_COLOR",
    "OCCLUDED_COLOR",
    "PREDICTED_BOX_COLOR",
    "RenderError",
    "draw_instances",
    "render_coco",
    "style_for_size",
]
