"""COCO keypoints format: pure ``dict <-> CocoDataset`` functions, thin file I/O on top.

The codec is lossless for COCO keypoint files whose keypoint layout is the
template's (same names, same order): ``to_coco(from_coco(d)) == d`` up to the
normalisations listed below, and ``from_coco(to_coco(ds))`` gives back ``ds``.

Coordinates are float32 in :class:`~posekit.core.Instance`. On export each
float32 is written as the *shortest decimal that reads back as the same
float32* (so ``313`` stays ``313``, ``353.37`` stays ``353.37``); COCO boxes are
written as ``[x, y, w, h]`` with the shortest ``w``/``h`` that give back the same
float32 ``x2``/``y2``. Inputs with more digits than float32 holds (PoseTrack has
``488.60028996999995``), COCO ``num_keypoints`` values that disagree with the
visibility flags, coordinates at not-labeled points that are not ``0, 0``,
``iscrowd: false`` instead of ``0`` and similar details are kept in a small
per-instance stash, ``Instance.extra["_coco"]``, used on export only while the
instance's geometry is unchanged (checked by a CRC of its keypoints,
visibility and box). The stash is present only for the instances that need it.

Documented normalisations (``to_coco(from_coco(d))`` vs ``d``):
    * annotations are written grouped by image, in image order (file order
      within an image), keypoint-category annotations first, then the
      annotations of other categories; the keypoint category is written first;
    * integral numbers are written as JSON integers (``401.0`` -> ``401``);
    * a file whose keypoint layout differs from the template (other order,
      missing points) is remapped by name, so its category and keypoint lists
      are written in the template's layout.

Review status, source and keypoint scores of predictions travel in a
``"posekit"`` field of each annotation (written only when they differ from a
manual, accepted annotation), so that export -> import is the identity.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from posekit.core import REVIEW_STATUSES, Instance
from posekit.gc_pause import gc_paused
from posekit.skeleton import Skeleton, SkeletonError, get_preset, list_presets, names_mapping

__all__ = [
    "STASH_KEY",
    "CocoDataset",
    "CocoFormatError",
    "ImageRecord",
    "LabeledImage",
    "from_coco",
    "load_boxes",
    "read_coco",
    "safe_relative_path",
    "skeleton_from_category",
    "to_coco",
    "to_coco_results",
    "write_coco",
]

logger = logging.getLogger(__name__)

#: Key of the per-instance round-trip stash in ``Instance.extra`` (never written as a field).
STASH_KEY = "_coco"
#: Name of the annotation field that carries posekit's review data.
POSEKIT_FIELD = "posekit"

_ANNOTATION_KEYS = frozenset(
    {
        "id",
        "image_id",
        "category_id",
        "keypoints",
        "num_keypoints",
        "bbox",
        "iscrowd",
        "area",
        "segmentation",
        "score",
        "track_id",
        POSEKIT_FIELD,
    }
)
_IMAGE_KEYS = frozenset({"id", "file_name", "width", "height"})
_TOP_KEYS = frozenset({"info", "licenses", "images", "annotations", "categories"})
_OPTIONAL_NULLABLE = ("bbox", "area", "segmentation", "score", "track_id")
_ABSENT = object()
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
# Integers above 2**53 are not exact in float64; never turn such floats into ints.
_MAX_EXACT_INT = float(2**53)


class CocoFormatError(ValueError):
    """A COCO file is malformed; the message names the bad element (index and id)."""


@dataclass
class ImageRecord:
    """One entry of COCO ``images``.

    Attributes:
        file_name: Path of the image relative to the image folder, as in the file.
        width: Image width in pixels.
        height: Image height in pixels.
        id: COCO image id, or None for a new image (an id is assigned on export).
        extra: Other image fields (``license``, ``coco_url``, ``frame_id``...), verbatim.
    """

    file_name: str
    width: int
    height: int
    id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabeledImage:
    """An image and its person instances (in the dataset template's layout)."""

    image: ImageRecord
    instances: list[Instance]


@dataclass
class CocoDataset:
    """A COCO keypoints dataset in posekit types.

    Attributes:
        skeleton: The template all instances follow (``K`` keypoints).
        images: Images in file order, each with its instances.
        category_id: COCO id of the keypoint category.
        info: COCO ``info`` block, verbatim, or None if absent.
        licenses: COCO ``licenses`` list, verbatim, or None if absent.
        category: The keypoint category entry as read, verbatim; written back
            while its keypoints are the template's (same order, names or aliases),
            otherwise the template's own category is written.
        extra_categories: Other categories, verbatim.
        extra_annotations: Annotations of other categories, verbatim.
        extra: Unknown top-level fields, verbatim.
    """

    skeleton: Skeleton
    images: list[LabeledImage]
    category_id: int = 1
    info: dict[str, Any] | None = None
    licenses: list[Any] | None = None
    category: dict[str, Any] | None = None
    extra_categories: list[dict[str, Any]] = field(default_factory=list)
    extra_annotations: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_instances(self) -> int:
        return sum(len(item.instances) for item in self.images)


# --------------------------------------------------------------------------- paths


def safe_relative_path(file_name: str) -> PurePosixPath:
    """Check an image ``file_name`` from a dataset file and return it as a relative path.

    Backslashes are read as separators (files written on Windows). Rejected:
    empty names, NUL characters, absolute paths, drive letters (``C:``) and any
    ``..`` component, so that joining the result to an image folder can never
    leave that folder.

    Raises:
        CocoFormatError: naming the file name and the reason.

    Example:
        >>> safe_relative_path("images\\\\val\\\\1.jpg")
        PurePosixPath('images/val/1.jpg')
    """
    if not isinstance(file_name, str) or not file_name:
        raise CocoFormatError(f"file name {file_name!r} is not a non-empty string")
    if "\x00" in file_name:
        raise CocoFormatError(f"file name {file_name!r} contains a NUL character")
    normalised = file_name.replace("\\", "/")
    if normalised.startswith("/"):
        raise CocoFormatError(f"file name {file_name!r} is an absolute path")
    if _DRIVE_RE.match(normalised):
        raise CocoFormatError(f"file name {file_name!r} starts with a drive letter")
    if ".." in normalised.split("/"):
        raise CocoFormatError(f"file name {file_name!r} climbs out of the image folder ('..')")
    path = PurePosixPath(normalised)
    if not path.parts or path == PurePosixPath("."):
        raise CocoFormatError(f"file name {file_name!r} names no file")
    return path


def _fast_safe(name: Any) -> bool:
    # Most names are plain "000000000785.jpg"; only the odd ones pay for the full check.
    return (
        type(name) is str
        and bool(name)
        and ".." not in name
        and "\\" not in name
        and ":" not in name
        and "\x00" not in name
        and name[0] != "/"
        and name not in (".", "./")
    )


# ------------------------------------------------------------------ float codec


def _shortest_decimals(values: np.ndarray) -> np.ndarray:
    """For each float32 value, the float64 of the shortest decimal reading back as it.

    ``values`` is any float32 array; returns a float64 array of the same shape.
    Values that need more than 12 decimals keep their exact float64 value.
    """
    f32 = np.ascontiguousarray(values, dtype=np.float32)
    exact = f32.astype(np.float64)
    # Whole-array first pass: most coordinates in real files are integers.
    out = np.round(exact)
    ok = out.astype(np.float32) == f32
    if ok.all():
        return out
    flat_out, flat_exact, flat_f32 = out.reshape(-1), exact.reshape(-1), f32.reshape(-1)
    todo = np.flatnonzero(~ok.reshape(-1))
    flat_out[todo] = flat_exact[todo]  # fallback for values that need > 12 decimals
    for decimals in range(1, 13):
        if todo.size == 0:
            break
        candidate = np.round(flat_exact[todo], decimals)
        ok = candidate.astype(np.float32) == flat_f32[todo]
        flat_out[todo[ok]] = candidate[ok]
        todo = todo[~ok]
    return out


def _encode_boxes(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4) float32`` xyxy -> ``(N, 4) float64`` COCO xywh with the shortest decimals
    such that ``float32(x + w) == x2`` (the import rule) and likewise for ``y``."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    out = np.empty(boxes.shape, dtype=np.float64)
    out[:, :2] = _shortest_decimals(boxes[:, :2])
    for start, end, size in ((0, 2, 2), (1, 3, 3)):
        origin = out[:, start]
        target = boxes[:, end]
        span = target.astype(np.float64) - origin
        result = span.copy()  # fallback: exact difference always reads back
        todo = np.arange(boxes.shape[0])
        for decimals in range(13):
            if todo.size == 0:
                break
            candidate = np.round(span[todo], decimals)
            ok = (origin[todo] + candidate).astype(np.float32) == target[todo]
            result[todo[ok]] = candidate[ok]
            todo = todo[~ok]
        out[:, size] = np.maximum(result, 0.0)
    return out


def _decode_boxes(xywh: np.ndarray) -> np.ndarray:
    """``(N, 4) float64`` COCO xywh -> ``(N, 4) float32`` xyxy (ends computed in float64)."""
    out = np.empty(xywh.shape, dtype=np.float32)
    out[:, 0] = xywh[:, 0]
    out[:, 1] = xywh[:, 1]
    out[:, 2] = xywh[:, 0] + xywh[:, 2]
    out[:, 3] = xywh[:, 1] + xywh[:, 3]
    return out


def _rows_to_lists(matrix: np.ndarray) -> list[list[Any]]:
    """Rows of a float64 matrix as JSON-ready lists; integral values become ints."""
    if matrix.shape[0] == 0:
        return []
    integral = (matrix == np.trunc(matrix)) & (np.abs(matrix) < _MAX_EXACT_INT)
    int_rows = integral.all(axis=1)
    if int_rows.all():
        return matrix.astype(np.int64).tolist()
    float_rows = ~integral.any(axis=1)
    if float_rows.all():
        return matrix.tolist()
    result: list[Any] = [None] * matrix.shape[0]
    int_index = np.flatnonzero(int_rows)
    for position, row in zip(int_index.tolist(), matrix[int_index].astype(np.int64).tolist()):
        result[position] = row
    float_index = np.flatnonzero(float_rows)
    for position, row in zip(float_index.tolist(), matrix[float_index].tolist()):
        result[position] = row
    for position in np.flatnonzero(~int_rows & ~float_rows).tolist():
        values = matrix[position].tolist()
        flags = integral[position].tolist()
        result[position] = [int(v) if f else v for v, f in zip(values, flags)]
    return result


def _geometry_crc(instance: Instance) -> int:
    crc = zlib.crc32(np.ascontiguousarray(instance.keypoints, dtype=np.float32).tobytes())
    crc = zlib.crc32(np.ascontiguousarray(instance.visibility, dtype=np.uint8).tobytes(), crc)
    if instance.box is not None:
        crc = zlib.crc32(np.ascontiguousarray(instance.box, dtype=np.float32).tobytes(), crc)
    return crc


# ------------------------------------------------------------------- skeletons


def _swap_side(name: str) -> str | None:
    tokens = re.split(r"([_\-. ])", name)
    swapped = False
    table = {"left": "right", "right": "left", "l": "r", "r": "l"}
    for i, token in enumerate(tokens):
        other = table.get(token.lower())
        if other is None:
            continue
        if token.isupper():
            other = other.upper()
        elif token[:1].isupper():
            other = other.capitalize()
        tokens[i] = other
        swapped = True
    if not swapped:
        for prefix, other in (("left", "right"), ("right", "left"), ("Left", "Right"),
                              ("Right", "Left"), ("L", "R"), ("R", "L")):  # fmt: skip
            # OpenPose style names such as "LShoulder" / "RShoulder"
            if name.startswith(prefix) and name[len(prefix) : len(prefix) + 1].isupper():
                return other + name[len(prefix) :]
        return None
    return "".join(tokens)


def _template_name(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        return name
    return re.sub(r"[^a-z0-9_.\-]+", "_", name.lower()).strip("_") or "keypoint"


def skeleton_from_category(
    category: Mapping[str, Any],
    sigmas: Sequence[float],
    *,
    name: str | None = None,
    edges: Sequence[Sequence[str]] | None = None,
    sigmas_source: str = "",
) -> Skeleton:
    """Build a template from a COCO keypoint category with explicit OKS sigmas.

    COCO ``skeleton`` edges are 1-based keypoint indices. Flip pairs are
    inferred from left/right names (``left_hip``/``right_hip``,
    ``Left Hip``/``Right Hip``, ``LHip``/``RHip``). Names that are not valid
    template names (AIC's ``"Right Shoulder"``) become snake case
    (``right_shoulder``) with the original as an alias, so files in the
    original spelling still map onto the template.

    Args:
        category: The COCO category entry (``keypoints``, optional ``skeleton``, ``name``).
        sigmas: One OKS sigma per keypoint; never guessed.
        name: Template name; defaults to the category name.
        edges: Edges by template keypoint name, replacing the category's
            ``skeleton`` (some files carry a broken one).
        sigmas_source: Where the sigmas come from.

    Raises:
        CocoFormatError: if the category or its edges are malformed.
    """
    where = f"category {category.get('name', '?')!r} (id {category.get('id')})"
    raw_names = category.get("keypoints")
    if not isinstance(raw_names, list) or not all(isinstance(n, str) for n in raw_names):
        raise CocoFormatError(f"{where}: 'keypoints' must be a list of names")
    # One naming rule for the whole template: if any name needs fixing, all become
    # snake case, so "Right Shoulder" and "Neck" do not end up as right_shoulder/Neck.
    if all(_template_name(n) == n for n in raw_names):
        names = list(raw_names)
    else:
        names = [_template_name(n.lower()) for n in raw_names]
    aliases = {new: [old] for new, old in zip(names, raw_names) if new != old}
    if edges is None:
        edge_list: list[list[str]] = []
        for e, pair in enumerate(category.get("skeleton") or []):
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(type(i) is int and 1 <= i <= len(names) for i in pair)
            ):
                raise CocoFormatError(
                    f"{where}: 'skeleton' edge #{e} {pair!r} is not a pair of 1-based keypoint "
                    f"indices in 1..{len(names)}"
                )
            edge_list.append([names[pair[0] - 1], names[pair[1] - 1]])
    else:
        edge_list = [list(pair) for pair in edges]
    flip_pairs: list[list[str]] = []
    paired: set[str] = set()
    for kp in names:
        partner = _swap_side(kp)
        if partner and partner != kp and partner in names and kp not in paired:
            flip_pairs.append([kp, partner])
            paired.update((kp, partner))
    data = {
        "name": name or _template_name(str(category.get("name") or "custom")),
        "category": str(category.get("name") or "person"),
        "keypoints": names,
        "edges": edge_list,
        "flip_pairs": flip_pairs,
        "sigmas": [float(s) for s in sigmas],
        "sigmas_source": sigmas_source,
        "aliases": aliases,
    }
    try:
        return Skeleton.from_dict(data, source=where)
    except SkeletonError as exc:
        raise CocoFormatError(str(exc)) from None


def _preset_for(names: list[str]) -> Skeleton | None:
    wanted = tuple(names)
    for preset in list_presets():
        try:
            skeleton = get_preset(preset)
        except SkeletonError:  # a broken preset file must not block reading COCO files
            logger.warning("skipping unreadable preset %s", preset)
            continue
        if skeleton.keypoints == wanted:
            return skeleton
    return None


# ---------------------------------------------------------------------- import


def _where(kind: str, index: int, item: Any) -> str:
    item_id = item.get("id") if isinstance(item, dict) else None
    return f"{kind}[{index}]" + (f" (id {item_id})" if item_id is not None else "")


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _pick_category(
    categories: list[Any], skeleton: Skeleton | None, source: str
) -> tuple[int, dict[str, Any]]:
    candidates = []
    for c, category in enumerate(categories):
        if not isinstance(category, dict):
            raise CocoFormatError(f"{source}: categories[{c}] is not an object")
        if not _is_int(category.get("id")):
            raise CocoFormatError(
                f"{source}: {_where('categories', c, category)}: 'id' must be an integer"
            )
        if category.get("keypoints"):
            candidates.append(c)
    if len(candidates) > 1 and skeleton is not None:
        named = [c for c in candidates if categories[c].get("name") == skeleton.category]
        candidates = named or candidates
    if not candidates:
        raise CocoFormatError(
            f"{source}: no category has a 'keypoints' list; this is not a COCO keypoints file"
        )
    if len(candidates) > 1:
        ids = ", ".join(str(categories[c]["id"]) for c in candidates)
        raise CocoFormatError(
            f"{source}: {len(candidates)} keypoint categories (ids {ids}); posekit reads one "
            "keypoint category per dataset"
        )
    c = candidates[0]
    category = categories[c]
    names = category["keypoints"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CocoFormatError(
            f"{source}: {_where('categories', c, category)}: 'keypoints' must be a list of names"
        )
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise CocoFormatError(
            f"{source}: {_where('categories', c, category)}: keypoint name {dup!r} appears twice"
        )
    return c, category


def _fail_values(source: str, where: str, raw: Any, what: str, expected: int | None) -> None:
    """Slow path: find why a list of numbers did not convert, and raise."""
    if not isinstance(raw, list):
        raise CocoFormatError(
            f"{source}: {where}: {what!r} must be a list, got {type(raw).__name__}"
        )
    for j, value in enumerate(raw):
        if not _is_number(value):
            raise CocoFormatError(
                f"{source}: {where}: {what!r} value #{j} is {value!r}, expected a number"
            )
    if expected is not None and len(raw) != expected:
        raise CocoFormatError(
            f"{source}: {where}: {what!r} has {len(raw)} values, expected {expected}"
        )


def _number_matrix(
    lists: list[Any], width: int, owners: list[int], anns: list[Any], source: str, what: str
) -> np.ndarray:
    """``(N, width) float64`` from lists already checked to have ``width`` items.

    ``np.array`` picks a numeric dtype only if every item is a number (a string gives
    a text array, ``None`` or a list an object array), which checks the types in C.
    """
    if not lists:
        return np.zeros((0, width), dtype=np.float64)
    matrix = np.array(lists)
    if matrix.ndim == 2 and matrix.dtype.kind in "iufb":
        return matrix.astype(np.float64, copy=False)
    for raw, a in zip(lists, owners):
        _fail_values(source, _where("annotations", a, anns[a]), raw, what, width)
    return np.array(lists, dtype=np.float64)  # all numbers: integers beyond int64


def _new_instance(fields: dict[str, Any]) -> Instance:
    # Instance.__post_init__ costs ~100 us; the arrays here were validated in bulk
    # (shapes, dtypes, 0/1/2 visibility, finiteness, zeroed unlabeled points, box
    # order, status/source), so build the object directly to keep 100k-annotation
    # imports fast.
    instance = object.__new__(Instance)
    instance.__dict__ = fields
    return instance


def from_coco(
    data: Mapping[str, Any], skeleton: Skeleton | None = None, *, source: str = "COCO file"
) -> CocoDataset:
    """Read a COCO keypoints dict into a :class:`CocoDataset`, validating all of it first.

    Args:
        data: The parsed JSON object (``images``, ``annotations``, ``categories``).
        skeleton: The project template. The file's keypoints are mapped onto it by
            name (a file keypoint it lacks is an error; its points missing from the
            file become not labeled). Without it the file's keypoint names must be
            those of a shipped preset (never guessed from their number).
        source: What to call the input in error messages (a path).

    Returns:
        The dataset; nothing is returned unless the whole input is valid.

    Raises:
        CocoFormatError: naming the bad element, e.g.
            ``annotations[12] (id 4711): 'keypoints' has 48 values, expected 51
            (17 keypoints x 3)``.

    Example:
        >>> ds = from_coco(json.loads(Path("person_keypoints.json").read_text()))  # doctest: +SKIP
    """
    with gc_paused():
        return _from_coco(data, skeleton, source)


def _from_coco(data: Mapping[str, Any], skeleton: Skeleton | None, source: str) -> CocoDataset:
    if not isinstance(data, Mapping):
        raise CocoFormatError(
            f"{source}: expected a JSON object with 'images', 'annotations' and 'categories', "
            f"got {type(data).__name__}"
        )
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise CocoFormatError(f"{source}: missing required key {missing[0]!r}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data[key], list):
            raise CocoFormatError(
                f"{source}: {key!r} must be a list, got {type(data[key]).__name__}"
            )
    info, licenses = data.get("info"), data.get("licenses")
    if info is not None and not isinstance(info, dict):
        raise CocoFormatError(f"{source}: 'info' must be an object")
    if licenses is not None and not isinstance(licenses, list):
        raise CocoFormatError(f"{source}: 'licenses' must be a list")

    categories: list[Any] = data["categories"]
    cat_index, category = _pick_category(categories, skeleton, source)
    cat_where = f"{source}: {_where('categories', cat_index, category)}"
    file_names: list[str] = category["keypoints"]
    k_file = len(file_names)
    if skeleton is None:
        skeleton = _preset_for(file_names)
        if skeleton is None:
            raise CocoFormatError(
                f"{cat_where}: keypoints {file_names[:4]}{'...' if k_file > 4 else ''} "
                f"({k_file} names) match no shipped preset; pass the project template "
                "(skeleton=...) that carries this layout's OKS sigmas"
            )
    try:
        mapping = names_mapping(file_names, skeleton, strict=True)
    except SkeletonError as exc:
        raise CocoFormatError(f"{cat_where}: {exc}") from None
    k = skeleton.num_keypoints
    identity = k == k_file and bool(np.array_equal(mapping, np.arange(k)))
    cat_id: int = category["id"]
    other_cat_ids = {c["id"] for i, c in enumerate(categories) if i != cat_index}

    # ---- images
    records: list[ImageRecord] = []
    image_pos: dict[int, int] = {}
    names_seen: dict[str, int] = {}
    for i, img in enumerate(data["images"]):
        if type(img) is not dict:
            raise CocoFormatError(f"{source}: images[{i}] is not an object")
        image_id = img.get("id")
        where = f"{source}: {_where('images', i, img)}"
        if not _is_int(image_id):
            raise CocoFormatError(f"{where}: 'id' must be an integer, got {image_id!r}")
        if image_id in image_pos:
            raise CocoFormatError(
                f"{where}: duplicate image id {image_id} (also images[{image_pos[image_id]}])"
            )
        image_pos[image_id] = i
        name = img.get("file_name")
        if not _fast_safe(name):
            try:
                safe_relative_path(name)
            except CocoFormatError as exc:
                raise CocoFormatError(f"{where}: 'file_name': {exc}") from None
        if name in names_seen:
            raise CocoFormatError(
                f"{where}: file_name {name!r} is also used by images[{names_seen[name]}]"
            )
        names_seen[name] = i
        size = []
        for key in ("width", "height"):
            value = img.get(key)
            if not _is_number(value) or not math.isfinite(value) or value != int(value):
                raise CocoFormatError(f"{where}: {key!r} must be an integer, got {value!r}")
            if value <= 0:
                raise CocoFormatError(f"{where}: {key!r} must be positive, got {value!r}")
            size.append(int(value))
        extra = {key: v for key, v in img.items() if key not in _IMAGE_KEYS}
        records.append(ImageRecord(name, size[0], size[1], image_id, extra))

    # ---- annotations: one cheap pass to collect, then vectorised checks
    anns: list[Any] = data["annotations"]
    ann_seen: dict[int, int] = {}
    rows: list[int] = []  # annotation index of each keypoint-category annotation
    row_image: list[int] = []
    kp_lists: list[Any] = []
    kp_owner: list[int] = []  # row of each present keypoints list
    box_lists: list[Any] = []
    box_owner: list[int] = []
    extra_annotations: list[dict[str, Any]] = []
    for a, ann in enumerate(anns):
        if type(ann) is not dict:
            raise CocoFormatError(f"{source}: annotations[{a}] is not an object")
        ann_id = ann.get("id")
        if not _is_int(ann_id):
            raise CocoFormatError(
                f"{source}: {_where('annotations', a, ann)}: 'id' must be an integer, "
                f"got {ann_id!r}"
            )
        if ann_id in ann_seen:
            raise CocoFormatError(
                f"{source}: {_where('annotations', a, ann)}: duplicate annotation id "
                f"(also annotations[{ann_seen[ann_id]}])"
            )
        ann_seen[ann_id] = a
        image_id = ann.get("image_id")
        position = image_pos.get(image_id) if _is_int(image_id) else None
        if position is None:
            raise CocoFormatError(
                f"{source}: {_where('annotations', a, ann)}: 'image_id' {image_id!r} is not "
                "the id of any image"
            )
        if ann.get("category_id") != cat_id:
            if ann.get("category_id") not in other_cat_ids:
                raise CocoFormatError(
                    f"{source}: {_where('annotations', a, ann)}: 'category_id' "
                    f"{ann.get('category_id')!r} is not the id of any category"
                )
            extra_annotations.append(ann)
            continue
        row = len(rows)
        rows.append(a)
        row_image.append(position)
        keypoints = ann.get("keypoints")
        if keypoints is not None:
            if type(keypoints) is not list:
                _fail_values(source, _where("annotations", a, ann), keypoints, "keypoints", None)
            kp_lists.append(keypoints)
            kp_owner.append(row)
        bbox = ann.get("bbox")
        if bbox is not None:
            if type(bbox) is not list:
                _fail_values(source, _where("annotations", a, ann), bbox, "bbox", 4)
            box_lists.append(bbox)
            box_owner.append(row)

    n = len(rows)

    def where_row(row: int) -> str:
        return f"{source}: {_where('annotations', rows[row], anns[rows[row]])}"

    # ---- keypoints
    lengths = np.fromiter(map(len, kp_lists), dtype=np.int64, count=len(kp_lists))
    bad = np.flatnonzero(lengths != 3 * k_file)
    if bad.size:
        j = int(bad[0])
        raise CocoFormatError(
            f"{where_row(kp_owner[j])}: 'keypoints' has {lengths[j]} values, expected "
            f"{3 * k_file} ({k_file} keypoints x 3)"
        )
    given = _number_matrix(
        kp_lists, 3 * k_file, [rows[r] for r in kp_owner], anns, source, "keypoints"
    ).reshape(len(kp_lists), k_file, 3)
    integer_input = given.dtype.kind in "iub"  # all JSON integers: the usual COCO case
    finite = np.ones(given.shape[:2], bool) if integer_input else np.isfinite(given).all(axis=2)
    if not finite.all():
        j, p = (int(x[0]) for x in np.nonzero(~finite))
        raise CocoFormatError(
            f"{where_row(kp_owner[j])}: keypoint {p} ({file_names[p]!r}) has a non-finite "
            f"value {given[j, p].tolist()}"
        )
    vis_given = given[:, :, 2]
    bad_vis = ~((vis_given == 0) | (vis_given == 1) | (vis_given == 2))
    if bad_vis.any():
        j, p = (int(x[0]) for x in np.nonzero(bad_vis))
        raise CocoFormatError(
            f"{where_row(kp_owner[j])}: keypoint {p} ({file_names[p]!r}) has visibility "
            f"{vis_given[j, p]:g}, expected 0, 1 or 2"
        )
    owner = np.asarray(kp_owner, dtype=np.int64)
    file_xy = np.zeros((n, k_file, 2), dtype=np.float32)
    file_vis = np.zeros((n, k_file), dtype=np.uint8)
    file_xy[owner] = given[:, :, :2]
    file_vis[owner] = vis_given
    file_xy[file_vis == 0] = 0.0
    # Rows whose export (from float32) would not reproduce the input exactly.
    kp_stash = np.zeros(n, dtype=bool)
    if identity and owner.size and integer_input:
        # Integers below 2**24 are exact in float32 and are written back as integers;
        # only unlabeled points with non-zero coordinates are not reproduced.
        coords = given[:, :, :2]
        # Cheap whole-array tests first; the per-row reduction runs only if one fails.
        if np.any(coords[vis_given == 0]) or np.abs(coords).max() >= 2**24:
            kp_stash[owner] = ((vis_given == 0)[:, :, None] & (coords != 0)).any(axis=(1, 2)) | (
                np.abs(coords) >= 2**24
            ).any(axis=(1, 2))
    elif identity and owner.size:
        rebuilt = np.concatenate(
            [_shortest_decimals(file_xy[owner]), vis_given[:, :, None]], axis=2
        )
        rebuilt[:, :, :2][vis_given == 0] = 0.0
        kp_stash[owner] = (rebuilt != given).any(axis=(1, 2))
    if identity:
        xy, vis = file_xy, file_vis
    else:
        valid = mapping >= 0
        safe = np.where(valid, mapping, 0)
        xy = np.where(valid[None, :, None], file_xy[:, safe], 0.0).astype(np.float32)
        vis = np.where(valid[None, :], file_vis[:, safe], 0).astype(np.uint8)
    file_num_labeled = np.count_nonzero(file_vis, axis=1) if n else np.zeros(0, np.int64)

    # ---- boxes
    box_lengths = np.fromiter(map(len, box_lists), dtype=np.int64, count=len(box_lists))
    bad = np.flatnonzero(box_lengths != 4)
    if bad.size:
        j = int(bad[0])
        raise CocoFormatError(
            f"{where_row(box_owner[j])}: 'bbox' has {box_lengths[j]} values, expected 4 "
            "(x, y, width, height)"
        )
    xywh = _number_matrix(box_lists, 4, [rows[r] for r in box_owner], anns, source, "bbox")
    bad = np.flatnonzero(~np.isfinite(xywh).all(axis=1) | (xywh[:, 2] < 0) | (xywh[:, 3] < 0))
    if bad.size:
        j = int(bad[0])
        raise CocoFormatError(
            f"{where_row(box_owner[j])}: 'bbox' {box_lists[j]!r} must be finite with "
            "non-negative width and height"
        )
    boxes = _decode_boxes(xywh)
    box_stash = (_encode_boxes(boxes) != xywh).any(axis=1)
    # Export writes integral values as JSON integers; keep boxes written as 15.0 so the
    # text round-trips too. Only rows holding an integral value need the type scan.
    integral_rows = np.flatnonzero(~box_stash & (xywh == np.trunc(xywh)).any(axis=1))
    for j in integral_rows.tolist():
        if any(type(v) is float and v == int(v) for v in box_lists[j]):
            box_stash[j] = True
    box_of_row = np.full(n, -1, dtype=np.int64)
    box_of_row[np.asarray(box_owner, dtype=np.int64)] = np.arange(len(box_owner))

    # ---- instances
    # Rows that may need a stash or a closer look; the rest take the fast path below.
    has_keypoints = np.zeros(n, dtype=bool)
    has_keypoints[owner] = True
    box_of_row_stash = np.zeros(n, dtype=bool)
    box_of_row_stash[box_of_row >= 0] = box_stash[box_of_row[box_of_row >= 0]]
    special = (kp_stash | box_of_row_stash | ~has_keypoints).tolist()
    counts = file_num_labeled.tolist()
    box_index = box_of_row.tolist()
    xy_rows, vis_rows, box_rows = list(xy), list(vis), list(boxes)
    isfinite = math.isfinite
    per_image: list[list[Instance]] = [[] for _ in records]
    for row, a in enumerate(rows):
        ann = anns[a]
        iscrowd = ann.get("iscrowd", _ABSENT)
        area = ann.get("area")
        score = track_id = None
        segmentation = ann.get("segmentation")
        raw_count = ann.get("num_keypoints", _ABSENT)
        b = box_index[row]
        stash: dict[str, Any] | None = None
        if (
            special[row]
            or type(iscrowd) is not int
            or not 0 <= iscrowd <= 1
            or not (area is None or (type(area) is float and isfinite(area)))
            or type(raw_count) is not int
            or raw_count != counts[row]
            or "score" in ann
            or "track_id" in ann
            or (area is None and "area" in ann)
            or (segmentation is None and "segmentation" in ann)
            or (b < 0 and "bbox" in ann)
        ):
            stash, iscrowd, area, score, track_id = _annotation_fields(
                ann, where_row(row), counts[row], identity, bool(kp_stash[row]),
                bool(box_of_row_stash[row]),
            )  # fmt: skip
        status, origin, keypoint_scores = "accepted", "manual", None
        review = ann.get(POSEKIT_FIELD)
        if review is not None:
            status, origin, keypoint_scores = _read_review(
                review, where_row(row), k_file, mapping, identity
            )
        extra = (
            {key: v for key, v in ann.items() if key not in _ANNOTATION_KEYS}
            if not _ANNOTATION_KEYS.issuperset(ann)
            else {}
        )
        instance = _new_instance(
            {
                "keypoints": xy_rows[row],
                "visibility": vis_rows[row],
                "keypoint_scores": keypoint_scores,
                "box": box_rows[b] if b >= 0 else None,
                "score": score,
                "source": origin,
                "status": status,
                "track_id": track_id,
                "iscrowd": iscrowd == 1,
                "area": area,
                "segmentation": segmentation,
                "id": ann["id"],
                "extra": extra,
            }
        )
        if stash:
            if "keypoints" in stash or "bbox" in stash or "num_keypoints" in stash:
                stash["crc"] = _geometry_crc(instance)
            extra[STASH_KEY] = stash
        per_image[row_image[row]].append(instance)

    return CocoDataset(
        skeleton=skeleton,
        images=[LabeledImage(record, items) for record, items in zip(records, per_image)],
        category_id=cat_id,
        info=info,
        licenses=licenses,
        category=category if identity else None,
        extra_categories=[c for i, c in enumerate(categories) if i != cat_index],
        extra_annotations=extra_annotations,
        extra={key: v for key, v in data.items() if key not in _TOP_KEYS},
    )


def _annotation_fields(
    ann: dict[str, Any],
    where: str,
    count: int,
    identity: bool,
    keypoints_differ: bool,
    bbox_differs: bool,
) -> tuple[dict[str, Any], int, float | None, float | None, int | None]:
    """Slow path of :func:`from_coco` for one annotation: validate the scalar fields
    and build the round-trip stash. Returns ``(stash, iscrowd, area, score, track_id)``."""
    stash: dict[str, Any] = {}
    if "keypoints" not in ann:
        stash.setdefault("absent", []).append("keypoints")
    elif keypoints_differ:
        stash["keypoints"] = ann["keypoints"]
    if bbox_differs:
        stash["bbox"] = ann["bbox"]
    raw_count = ann.get("num_keypoints", _ABSENT)
    if raw_count is _ABSENT:
        stash.setdefault("absent", []).append("num_keypoints")
    elif type(raw_count) is not int or raw_count != count:
        if not _is_number(raw_count):
            raise CocoFormatError(f"{where}: 'num_keypoints' must be an integer, got {raw_count!r}")
        if identity:
            stash["num_keypoints"] = raw_count
    iscrowd = ann.get("iscrowd", _ABSENT)
    if iscrowd is _ABSENT:
        stash.setdefault("absent", []).append("iscrowd")
        iscrowd = 0
    elif type(iscrowd) not in (int, float, bool) or iscrowd not in (0, 1):
        raise CocoFormatError(f"{where}: 'iscrowd' must be 0 or 1, got {iscrowd!r}")
    elif type(iscrowd) is not int:
        stash.setdefault("raw", {})["iscrowd"] = iscrowd
    scalars: dict[str, Any] = {}
    for key, kind in (("area", float), ("score", float), ("track_id", int)):
        value = ann.get(key)
        if value is None:
            scalars[key] = None
            continue
        if (
            not _is_number(value)
            or not math.isfinite(value)
            or (kind is int and value != int(value))
        ):
            raise CocoFormatError(
                f"{where}: {key!r} must be a finite {'integer' if kind is int else 'number'}, "
                f"got {value!r}"
            )
        scalars[key] = kind(value)
        if type(value) is not kind:
            stash.setdefault("raw", {})[key] = value
    for key in _OPTIONAL_NULLABLE:
        if key in ann and ann[key] is None:
            stash.setdefault("null", []).append(key)
    return stash, int(iscrowd), scalars["area"], scalars["score"], scalars["track_id"]


def _read_review(
    review: Any, where: str, k_file: int, mapping: np.ndarray, identity: bool
) -> tuple[str, str, np.ndarray | None]:
    if not isinstance(review, dict):
        raise CocoFormatError(f"{where}: {POSEKIT_FIELD!r} must be an object")
    unknown = set(review) - {"status", "source", "keypoint_scores"}
    if unknown:
        raise CocoFormatError(f"{where}: {POSEKIT_FIELD!r} has unknown key {sorted(unknown)[0]!r}")
    status = review.get("status", "accepted")
    if status not in REVIEW_STATUSES:
        raise CocoFormatError(
            f"{where}: {POSEKIT_FIELD}.status {status!r} is not one of {', '.join(REVIEW_STATUSES)}"
        )
    origin = review.get("source", "manual")
    if not isinstance(origin, str) or not (origin == "manual" or origin.startswith("model:")):
        raise CocoFormatError(
            f"{where}: {POSEKIT_FIELD}.source must be 'manual' or 'model:<name>', got {origin!r}"
        )
    raw_scores = review.get("keypoint_scores")
    if raw_scores is None:
        return status, origin, None
    if (
        not isinstance(raw_scores, list)
        or len(raw_scores) != k_file
        or not all(_is_number(s) and math.isfinite(s) for s in raw_scores)
    ):
        raise CocoFormatError(
            f"{where}: {POSEKIT_FIELD}.keypoint_scores must be {k_file} finite numbers"
        )
    scores = np.asarray(raw_scores, dtype=np.float32)
    if not identity:
        scores = np.where(mapping >= 0, scores[np.where(mapping >= 0, mapping, 0)], 0.0)
        scores = scores.astype(np.float32)
    return status, origin, scores


# ---------------------------------------------------------------------- export


def _category_entry(dataset: CocoDataset) -> dict[str, Any]:
    skeleton = dataset.skeleton
    original = dataset.category
    if original is not None:
        names = original.get("keypoints")
        if isinstance(names, list) and len(names) == skeleton.num_keypoints:
            try:
                mapping = names_mapping(names, skeleton)
            except SkeletonError:
                mapping = None
            if mapping is not None and np.array_equal(mapping, np.arange(len(names))):
                entry = dict(original)
                entry["id"] = dataset.category_id
                return entry
    return skeleton.coco_category(dataset.category_id)


def _assign_ids(existing: list[int | None], reserved: set[int] | None = None) -> list[int]:
    used = {i for i in existing if i is not None} | (reserved or set())
    next_id = max(used, default=0) + 1
    out = []
    for value in existing:
        if value is None:
            value = next_id
            next_id += 1
        out.append(value)
    return out


def _image_ids(dataset: CocoDataset) -> list[int]:
    return _assign_ids([item.image.id for item in dataset.images])


def _gather(dataset: CocoDataset) -> tuple[list[Instance], list[int], np.ndarray, np.ndarray]:
    k = dataset.skeleton.num_keypoints
    instances: list[Instance] = []
    owners: list[int] = []
    for position, item in enumerate(dataset.images):
        instances.extend(item.instances)
        owners.extend([position] * len(item.instances))
    for instance, position in zip(instances, owners):
        if instance.keypoints.shape != (k, 2) or instance.visibility.shape != (k,):
            raise CocoFormatError(
                f"image {dataset.images[position].image.file_name!r}: instance "
                f"{instance.id} has {instance.keypoints.shape[0]} keypoints, but template "
                f"{dataset.skeleton.name!r} has {k}"
            )
    if not instances:
        return instances, owners, np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.uint8)
    xy = np.concatenate([i.keypoints for i in instances]).reshape(-1, k, 2)
    vis = np.concatenate([i.visibility for i in instances]).reshape(-1, k)
    xy = xy.astype(np.float32, copy=False)
    vis = vis.astype(np.uint8, copy=False)
    return instances, owners, xy, vis


def _keypoint_lists(xy: np.ndarray, vis: np.ndarray) -> list[list[Any]]:
    n, k = vis.shape
    triplets = np.empty((n, k, 3), dtype=np.float64)
    triplets[:, :, :2] = _shortest_decimals(xy)
    triplets[:, :, :2][vis == 0] = 0.0
    triplets[:, :, 2] = vis
    return _rows_to_lists(triplets.reshape(n, 3 * k))


def _scores_list(scores: np.ndarray) -> list[Any]:
    return _rows_to_lists(_shortest_decimals(scores).reshape(1, -1))[0]


def _raw(stash: dict[str, Any], key: str, value: Any, kind: type) -> Any:
    raw = stash.get("raw", {}).get(key, _ABSENT) if stash else _ABSENT
    if raw is not _ABSENT and value is not None and kind(raw) == value:
        return raw
    return value


def to_coco(dataset: CocoDataset) -> dict[str, Any]:
    """Write a :class:`CocoDataset` as a COCO keypoints dict (ready for ``json.dump``).

    Image and annotation ids that are None are assigned after the largest
    used id. Not-labeled points are written as ``0, 0, 0``; ``num_keypoints``
    is the number of labeled points.

    Raises:
        CocoFormatError: if an instance does not have the template's number of keypoints.
    """
    with gc_paused():
        return _to_coco(dataset)


def _to_coco(dataset: CocoDataset) -> dict[str, Any]:
    image_ids = _image_ids(dataset)
    instances, owners, xy, vis = _gather(dataset)
    reserved = {a.get("id") for a in dataset.extra_annotations if _is_int(a.get("id"))}
    ann_ids = _assign_ids([i.id for i in instances], reserved)
    keypoint_lists = _keypoint_lists(xy, vis)
    counts = np.count_nonzero(vis, axis=1).tolist() if instances else []
    box_index = [j for j, inst in enumerate(instances) if inst.box is not None]
    box_lists: list[Any] = [None] * len(instances)
    if box_index:
        encoded = _rows_to_lists(_encode_boxes(np.stack([instances[j].box for j in box_index])))
        for j, values in zip(box_index, encoded):
            box_lists[j] = values
    cat_id = dataset.category_id

    annotations: list[dict[str, Any]] = []
    for j, inst in enumerate(instances):
        stash = inst.extra.get(STASH_KEY) if inst.extra else None
        unchanged = bool(stash) and "crc" in stash and stash["crc"] == _geometry_crc(inst)
        absent = stash.get("absent", ()) if stash else ()
        null = stash.get("null", ()) if stash else ()
        ann: dict[str, Any] = {"id": ann_ids[j], "image_id": image_ids[owners[j]]}
        ann["category_id"] = cat_id
        if not ("keypoints" in absent and counts[j] == 0):
            ann["keypoints"] = (
                stash["keypoints"] if unchanged and "keypoints" in stash else (keypoint_lists[j])
            )
        if "num_keypoints" not in absent:
            ann["num_keypoints"] = (
                stash["num_keypoints"] if unchanged and "num_keypoints" in stash else counts[j]
            )
        if box_lists[j] is not None:
            ann["bbox"] = stash["bbox"] if unchanged and "bbox" in stash else box_lists[j]
        elif "bbox" in null:
            ann["bbox"] = None
        if not ("iscrowd" in absent and not inst.iscrowd):
            ann["iscrowd"] = _raw(stash, "iscrowd", int(inst.iscrowd), int)
        for key, value, kind in (
            ("area", inst.area, float),
            ("score", inst.score, float),
            ("track_id", inst.track_id, int),
        ):
            if value is not None:
                ann[key] = _raw(stash, key, value, kind)
            elif key in null:
                ann[key] = None
        if inst.segmentation is not None or "segmentation" in null:
            ann["segmentation"] = inst.segmentation
        if inst.extra:
            for key, value in inst.extra.items():
                if key != STASH_KEY and key not in _ANNOTATION_KEYS:
                    ann[key] = value
        if inst.status != "accepted" or inst.source != "manual" or inst.keypoint_scores is not None:
            review: dict[str, Any] = {"status": inst.status, "source": inst.source}
            if inst.keypoint_scores is not None:
                review["keypoint_scores"] = _scores_list(inst.keypoint_scores)
            ann[POSEKIT_FIELD] = review
        annotations.append(ann)
    annotations.extend(dataset.extra_annotations)

    images = []
    for item, image_id in zip(dataset.images, image_ids):
        record = item.image
        entry = {
            "id": image_id,
            "file_name": record.file_name,
            "width": int(record.width),
            "height": int(record.height),
        }
        entry.update((k, v) for k, v in record.extra.items() if k not in _IMAGE_KEYS)
        images.append(entry)

    out: dict[str, Any] = {}
    if dataset.info is not None:
        out["info"] = dataset.info
    if dataset.licenses is not None:
        out["licenses"] = dataset.licenses
    out["images"] = images
    out["annotations"] = annotations
    out["categories"] = [_category_entry(dataset), *dataset.extra_categories]
    out.update((k, v) for k, v in dataset.extra.items() if k not in _TOP_KEYS)
    return out


def to_coco_results(dataset: CocoDataset) -> list[dict[str, Any]]:
    """COCO keypoint *results* list (what ``COCO.loadRes`` and ``COCOeval`` read).

    One entry per instance with at least one labeled keypoint that is neither a
    crowd region nor ``rejected``: ``image_id``, ``category_id``, ``keypoints``
    (``x, y, v`` triplets), ``score`` (the instance score, 1.0 if it has none)
    and ``bbox`` (the box, else the box around the labeled points).
    """
    image_ids = _image_ids(dataset)
    instances, owners, xy, vis = _gather(dataset)
    keep = [
        j
        for j, inst in enumerate(instances)
        if not inst.iscrowd and inst.status != "rejected" and inst.num_labeled > 0
    ]
    if not keep:
        return []
    keypoint_lists = _keypoint_lists(xy[keep], vis[keep])
    boxes = np.stack([instances[j].bbox_or_keypoint_box() for j in keep])
    box_lists = _rows_to_lists(_encode_boxes(boxes))
    return [
        {
            "image_id": image_ids[owners[j]],
            "category_id": dataset.category_id,
            "keypoints": keypoint_lists[r],
            "score": 1.0 if instances[j].score is None else float(instances[j].score),
            "bbox": box_lists[r],
        }
        for r, j in enumerate(keep)
    ]


# ------------------------------------------------------------------- file I/O


def _load_json(path: Path) -> Any:
    import orjson

    raw = path.read_bytes()
    try:
        with gc_paused():
            # orjson parses large COCO files 2-3x faster than the json module.
            return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Strict JSON failed: the json module accepts what orjson refuses (NaN and
        # Infinity literals, integers beyond 64 bits), so that validation can name
        # the element, and it gives the precise message for truly broken files.
        pass
    try:
        with gc_paused():
            return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CocoFormatError(f"{path}: not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CocoFormatError(f"{path}: not UTF-8 text: {exc}") from None


def read_coco(path: str | os.PathLike[str], skeleton: Skeleton | None = None) -> CocoDataset:
    """Read a COCO keypoints file (see :func:`from_coco`).

    Raises:
        CocoFormatError: invalid JSON or COCO content (the message starts with the path).
        OSError: the file cannot be read.
    """
    path = Path(path)
    return from_coco(_load_json(path), skeleton, source=str(path))


def write_coco(dataset: CocoDataset, path: str | os.PathLike[str]) -> None:
    """Write ``dataset`` as a COCO keypoints file, atomically.

    The JSON goes to a temporary file in the destination folder, which then
    replaces ``path`` (``os.replace``), so a crash never leaves half a file.
    """
    path = Path(path)
    with gc_paused():
        data = to_coco(dataset)
        try:
            import orjson

            # orjson writes large files several times faster than the json module.
            # It writes non-finite floats as null; our own fields are validated finite,
            # and JSON has no NaN, so an unknown field carried verbatim becomes null.
            payload = orjson.dumps(data)
        except TypeError:
            # Integers beyond 64 bits in fields carried verbatim: the json module
            # writes them.
            payload = json.dumps(
                data, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _person_category_ids(categories: Any) -> set[int] | None:
    """Ids of person categories (named ``person`` or carrying keypoints), or None if
    the file says nothing about categories."""
    if not isinstance(categories, list) or not categories:
        return None
    ids = {
        c["id"]
        for c in categories
        if isinstance(c, dict) and (c.get("name") == "person" or c.get("keypoints"))
    }
    if not ids and len(categories) == 1 and isinstance(categories[0], dict):
        ids = {categories[0].get("id")}
    return ids


def _image_names(data: Any, source: str) -> dict[int, str]:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CocoFormatError(f"{source}: expected a COCO file with an 'images' list")
    names: dict[int, str] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not _is_int(img.get("id")):
            raise CocoFormatError(f"{source}: {_where('images', i, img)}: needs an integer 'id'")
        try:
            safe_relative_path(img.get("file_name"))
        except CocoFormatError as exc:
            raise CocoFormatError(
                f"{source}: {_where('images', i, img)}: 'file_name': {exc}"
            ) from None
        if img["id"] in names:
            raise CocoFormatError(f"{source}: {_where('images', i, img)}: duplicate image id")
        names[img["id"]] = img["file_name"]
    return names


def load_boxes(
    path: str | os.PathLike[str], images_from: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Person boxes from a COCO file or a COCO results list, by image ``file_name``.

    Args:
        path: Either a COCO file (``images`` + ``annotations`` with ``bbox`` and
            optional ``score``; crowd regions are skipped) or a COCO results list
            (``image_id``, ``bbox``, ``score``, optional ``category_id``).
        images_from: For a results list, the COCO file whose ``images`` name the
            ``image_id`` values (file names are not in results lists).

    Returns:
        ``{file_name: Detections}`` with ``boxes (N, 4) float32`` xyxy and
        ``scores (N,) float32`` (1.0 where the input has none), for every image
        of the COCO file (images without boxes get empty detections). Only person
        boxes are kept (the category named ``person`` or with keypoints).

    Raises:
        CocoFormatError: malformed input, naming the element; a results list
            without ``images_from``.
    """
    from posekit.models.base import Detections  # models layer sits beside formats

    path = Path(path)
    data = _load_json(path)
    if isinstance(data, list):
        if images_from is None:
            raise CocoFormatError(
                f"{path}: is a COCO results list, which has image ids but no file names; "
                "pass images_from=<the COCO file whose 'images' those ids refer to>"
            )
        names_source = Path(images_from)
        names_data = _load_json(names_source)
        names = _image_names(names_data, str(names_source))
        person_ids = _person_category_ids(names_data.get("categories"))
        entries, kind = data, "results"
    elif isinstance(data, dict):
        names = _image_names(data, str(path))
        person_ids = _person_category_ids(data.get("categories"))
        entries = data.get("annotations")
        if not isinstance(entries, list):
            raise CocoFormatError(f"{path}: missing 'annotations' list")
        kind = "annotations"
    else:
        raise CocoFormatError(f"{path}: expected a COCO file or a COCO results list")

    per_image: dict[int, tuple[list[list[float]], list[float]]] = {i: ([], []) for i in names}
    for e, entry in enumerate(entries):
        where = f"{path}: {_where(kind, e, entry)}"
        if not isinstance(entry, dict):
            raise CocoFormatError(f"{where}: not an object")
        if not _is_int(entry.get("image_id")) or entry["image_id"] not in names:
            raise CocoFormatError(
                f"{where}: 'image_id' {entry.get('image_id')!r} is not the id of any image"
                + (f" in {images_from}" if kind == "results" else "")
            )
        category = entry.get("category_id")
        if person_ids is not None and category is not None and category not in person_ids:
            continue
        if entry.get("iscrowd"):
            continue
        bbox = entry.get("bbox")
        if bbox is None and kind == "annotations":
            continue
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(_is_number(v) and math.isfinite(v) for v in bbox)
            or bbox[2] < 0
            or bbox[3] < 0
        ):
            raise CocoFormatError(
                f"{where}: 'bbox' {bbox!r} must be 4 finite numbers x, y, width, height "
                "with non-negative size"
            )
        score = entry.get("score", 1.0)
        if not _is_number(score) or not math.isfinite(score):
            raise CocoFormatError(f"{where}: 'score' {score!r} must be a finite number")
        x, y, w, h = (float(v) for v in bbox)
        boxes, scores = per_image[entry["image_id"]]
        boxes.append([x, y, x + w, y + h])
        scores.append(float(score))
    return {
        names[image_id]: Detections(np.asarray(boxes, np.float32).reshape(-1, 4), scores)
        for image_id, (boxes, scores) in per_image.items()
    }
