"""The Label Studio vocabulary shared by the reader and the writer (region names,
the error type) and the labeling config (XML) of a template (see
:mod:`posekit.formats.labelstudio` for the format itself)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from posekit.skeleton import Skeleton

__all__ = [
    "DERIVED_BOX_NOTE",
    "IMAGE_URL_KEY",
    "LOCAL_FILES_PREFIX",
    "OCCLUDED",
    "LabelStudioFormatError",
    "labelstudio_config",
    "parse_labelstudio_config",
]

#: ``meta.text`` note on a person box that posekit derived from the keypoints.
DERIVED_BOX_NOTE = "posekit: box around the keypoints"
#: ``ImageRecord.extra`` key of the task's image URL.
IMAGE_URL_KEY = "labelstudio_image"
OCCLUDED = "occluded"
LOCAL_FILES_PREFIX = "/data/local-files/?d="


class LabelStudioFormatError(ValueError):
    """A Label Studio export or config is malformed; the message names the task and region."""


# ------------------------------------------------------------------ config


def labelstudio_config(
    template: Skeleton,
    *,
    image_name: str = "image",
    keypoints_name: str = "keypoints",
    box_name: str = "bbox",
    visibility_name: str = "visibility",
) -> str:
    """The Label Studio labeling config (XML) for a posekit template.

    It has the ``Image``, a ``RectangleLabels`` with the template's category (the
    person box, parent of its keypoints), a ``KeyPointLabels`` with one ``Label``
    per keypoint (``model_index`` = its position in the template, colour from the
    template) and a per-region ``Choices`` to flag a point as occluded.
    """
    view = ET.Element("View")
    ET.SubElement(view, "Image", name=image_name, value=f"${image_name}")
    boxes = ET.SubElement(view, "RectangleLabels", name=box_name, toName=image_name)
    ET.SubElement(boxes, "Label", value=template.category)
    points = ET.SubElement(view, "KeyPointLabels", name=keypoints_name, toName=image_name)
    for index, (name, color) in enumerate(zip(template.keypoints, template.keypoint_colors)):
        ET.SubElement(
            points,
            "Label",
            value=name,
            model_index=str(index),
            background="#{:02x}{:02x}{:02x}".format(*(int(c) for c in color)),
        )
    choices = ET.SubElement(
        view,
        "Choices",
        name=visibility_name,
        toName=image_name,
        perRegion="true",
        whenTagName=keypoints_name,
        choice="single",
    )
    ET.SubElement(choices, "Choice", value=OCCLUDED)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def parse_labelstudio_config(xml: str) -> dict[str, Any]:
    """What posekit needs from a labeling config: ``keypoints`` (names in
    ``model_index`` order, else document order), ``image_key`` (the ``data`` field of
    the image) and ``box_labels`` (the ``RectangleLabels`` values).

    Raises:
        LabelStudioFormatError: not XML, or XML with a DTD or entities (refused).
    """
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    try:
        root = SafeET.fromstring(xml)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise LabelStudioFormatError(f"labeling config: not valid XML: {exc}") from None
    names: list[tuple[int | None, int, str]] = []
    for position, label in enumerate(root.iter("KeyPointLabels")):
        for j, item in enumerate(label.iter("Label")):
            raw = item.get("model_index")
            index = int(raw) if raw is not None and raw.strip().isdigit() else None
            names.append((index, position * 10_000 + j, item.get("value", "")))
    if names and all(index is not None for index, _, _ in names):
        names.sort(key=lambda t: (t[0], t[1]))
    image = next(root.iter("Image"), None)
    image_key = None
    if image is not None and (image.get("value") or "").startswith("$"):
        image_key = image.get("value")[1:]
    box_labels = [
        item.get("value", "") for tag in root.iter("RectangleLabels") for item in tag.iter("Label")
    ]
    return {"keypoints": [n for _, _, n in names], "image_key": image_key, "box_labels": box_labels}
