"""The annotation files of a Supervisely images project written straight to JSON bytes:
the same bytes as ``orjson.dumps(item.annotation)`` for each item of
:func:`~posekit.formats.supervisely_images._image_items`, without building the two
dicts and a list per keypoint that those annotations hold (100k instances: 1.7M
nodes, most of the export's time after the file system's own).

Numbers are formatted by orjson itself (all coordinates in one call, so each float
reads as orjson writes it), strings are escaped by orjson, and each graph object is
put together from per-keypoint fragments in the key order of the dicts.
``tests/formats/test_supervisely_json.py`` checks that both give the same bytes.
"""

from __future__ import annotations

from itertools import compress

import numpy as np

from posekit.dataset import PoseDataset
from posekit.formats.numbers import shortest_decimals
from posekit.formats.supervisely_graph import (
    OCCLUDED_TAG,
    SuperviselyFormatError,
    _exported,
    _split_name,
)

__all__ = ["image_annotation_bytes"]


def _json(value: object) -> bytes:
    import orjson

    return orjson.dumps(value)


def image_annotation_bytes(dataset: PoseDataset, title: str) -> list[tuple[str, str, bytes]]:
    """``(dataset folder, image name, file bytes)`` per image of a still-images dataset,
    in the order and with the errors of ``_image_items``."""
    names = list(dataset.skeleton.keypoints)
    k = len(names)
    exported = [_exported(item.instances) for item in dataset.images]
    flat = [inst for group in exported for inst in group]
    n = len(flat)
    if n and k:
        xy = np.stack([inst.keypoints for inst in flat])
        vis = np.stack([inst.visibility for inst in flat]).reshape(n * k)
        numbers = _json(shortest_decimals(xy).reshape(-1).tolist())[1:-1].split(b",")
    else:
        vis = np.zeros(n * k, np.uint8)
        numbers = []
    quoted = [_json(name) for name in names]
    escaped = [q[1:-1] for q in quoted]  # inside a string (the occluded tag's value)
    # One template per object: "name":{"loc":[x,y]} or, not labeled,
    # "name":{"loc":[0,0],"disabled":true}; filled by bytes formatting (C) per object.
    template = b"{" + b",".join(q + b':{"loc":[%s,%s]%s}' for q in quoted) + b"}"
    cells = np.empty((n * k, 3), dtype=object)
    cells[:, 0] = numbers[0::2]
    cells[:, 1] = numbers[1::2]
    cells[:, 2] = b""
    cells[vis == 0] = (b"0", b"0", b',"disabled":true')
    rows = cells.reshape(n, 3 * k).tolist()
    del cells
    occluded_rows = set(np.flatnonzero((vis == 1).reshape(n, k).any(axis=1)).tolist())
    head = b'{"classTitle":' + _json(title) + b',"description":"","geometryType":"graph","tags":'
    tag_head = b'[{"name":' + _json(OCCLUDED_TAG) + b',"value":"'
    occluded_masks = (vis == 1).reshape(n, k).tolist()
    out: list[tuple[str, str, bytes]] = []
    seen: set[tuple[str, str]] = set()
    row = 0
    for item, group in zip(dataset.images, exported):
        image = item.image
        ds_name, name = _split_name(image.file_name, f"image {image.file_name!r}")
        if (ds_name, name) in seen:
            raise SuperviselyFormatError(f"image {image.file_name!r} appears twice")
        seen.add((ds_name, name))
        objects = []
        for _ in group:
            if row in occluded_rows:
                value = b",".join(compress(escaped, occluded_masks[row]))
                tags = tag_head + value + b'"}]'
            else:
                tags = b"[]"
            objects.append(head + tags + b',"nodes":' + template % tuple(rows[row]) + b"}")
            row += 1
        size = b'{"height":%d,"width":%d}' % (int(image.height), int(image.width))
        out.append(
            (
                ds_name,
                name,
                b'{"description":"","tags":[],"size":' + size + b',"objects":['
                + b",".join(objects) + b"]}",
            )
        )  # fmt: skip
    return out
