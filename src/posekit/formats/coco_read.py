"""Reading COCO keypoints dicts into a :class:`~posekit.dataset.PoseDataset`.

All of the input is validated before anything is returned; the checks run on
whole numpy arrays so that 100k-annotation files read fast (see
:mod:`posekit.formats.coco` for the round-trip rules).

:func:`prepare_coco_file` (from :mod:`posekit.formats.coco_json`) reads a file
with a faster parse where it can, feeding :func:`_prepare_coco` a keypoints
matrix instead of lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from posekit.dataset import ImageRecord, PoseDataset
from posekit.formats.coco_json import NotFast, RawKeypoints, prepare_coco_file
from posekit.formats.coco_rows import CocoRows
from posekit.formats.coco_schema import (
    FLOAT32_MAX,
    IMAGE_KEYS,
    TOP_KEYS,
    CocoFormatError,
    element_name,
    is_int,
    is_number,
)
from posekit.formats.numbers import (
    decode_xywh_boxes,
    encode_xywh_boxes,
    is_finite_number,
    shortest_decimals,
)
from posekit.gc_pause import gc_paused
from posekit.media import image as image_module
from posekit.media.paths import UnsafePathError, safe_relative_name
from posekit.skeleton import Skeleton, SkeletonError, names_mapping, preset_for_names

__all__ = ["FLOAT32_MAX", "CocoRows", "from_coco", "prepare_coco", "prepare_coco_file"]


def _pick_category(
    categories: list[Any], skeleton: Skeleton | None, source: str
) -> tuple[int, dict[str, Any]]:
    candidates = []
    for c, category in enumerate(categories):
        if not isinstance(category, dict):
            raise CocoFormatError(f"{source}: categories[{c}] is not an object")
        if not is_int(category.get("id")):
            raise CocoFormatError(
                f"{source}: {element_name('categories', c, category)}: 'id' must be an integer"
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
            f"{source}: {element_name('categories', c, category)}: "
            "'keypoints' must be a list of names"
        )
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise CocoFormatError(
            f"{source}: {element_name('categories', c, category)}: "
            f"keypoint name {dup!r} appears twice"
        )
    return c, category


def _fail_values(source: str, where: str, raw: Any, what: str, expected: int | None) -> None:
    """Slow path: find why a list of numbers did not convert, and raise."""
    if not isinstance(raw, list):
        raise CocoFormatError(
            f"{source}: {where}: {what!r} must be a list, got {type(raw).__name__}"
        )
    for j, value in enumerate(raw):
        if not is_number(value):
            raise CocoFormatError(
                f"{source}: {where}: {what!r} value #{j} is {value!r}, expected a number"
            )
    if expected is not None and len(raw) != expected:
        raise CocoFormatError(
            f"{source}: {where}: {what!r} has {len(raw)} values, expected {expected}"
        )


def _number_matrix(
    lists: list[Any],
    width: int,
    owners: list[int],
    rows: list[int],
    anns: list[Any],
    source: str,
    what: str,
    *,
    integers: bool = False,
) -> np.ndarray:
    """``(N, width) float64`` from lists already checked to have ``width`` items
    (``owners``: the row of each list; ``rows``: the annotation index of each row).
    With ``integers``, lists of JSON integers only give an ``int64`` matrix as it is.

    ``np.array`` picks a numeric dtype only if every item is a number (a string gives
    a text array, ``None`` or a list an object array), which checks the types in C.
    """
    if not lists:
        return np.zeros((0, width), dtype=np.float64)
    matrix = np.array(lists)
    if matrix.ndim == 2 and matrix.dtype.kind in "iufb":
        if integers and matrix.dtype.kind in "iu":
            return matrix
        return matrix.astype(np.float64, copy=False)
    for raw, row in zip(lists, owners):
        a = rows[row]
        _fail_values(source, element_name("annotations", a, anns[a]), raw, what, width)
    return np.array(lists, dtype=np.float64)  # all numbers: integers beyond int64


def from_coco(
    data: Mapping[str, Any], skeleton: Skeleton | None = None, *, source: str = "COCO file"
) -> PoseDataset:
    """Read a COCO keypoints dict into a :class:`PoseDataset`, validating all of it first.

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
        return prepare_coco(data, skeleton, source=source).dataset()


def prepare_coco(
    data: Mapping[str, Any], skeleton: Skeleton | None = None, *, source: str = "COCO file"
) -> CocoRows:
    """The whole-file part of :func:`from_coco`: every check that runs on whole arrays.

    What is left are the per-annotation scalar fields, checked and built by
    :meth:`CocoRows.fields` (which may raise :class:`CocoFormatError` too), in
    chunks if the caller wants: the store's bulk import writes chunk k while
    chunk k+1 is built. ``prepare_coco(d, t).dataset() == from_coco(d, t)``.
    """
    with gc_paused():
        return _prepare_coco(data, skeleton, source)


def _prepare_coco(
    data: Mapping[str, Any],
    skeleton: Skeleton | None,
    source: str,
    keypoints: RawKeypoints | None = None,
) -> CocoRows:
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
    cat_where = f"{source}: {element_name('categories', cat_index, category)}"
    file_names: list[str] = category["keypoints"]
    k_file = len(file_names)
    if skeleton is None:
        skeleton = preset_for_names(file_names)
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
    max_side = image_module.MAX_PIXELS  # larger sides are refused below in any case
    for i, img in enumerate(data["images"]):
        if type(img) is not dict:
            raise CocoFormatError(f"{source}: images[{i}] is not an object")
        image_id = img.get("id")
        if not is_int(image_id) or image_id in image_pos:
            where = f"{source}: {element_name('images', i, img)}"
            if not is_int(image_id):
                raise CocoFormatError(f"{where}: 'id' must be an integer, got {image_id!r}")
            raise CocoFormatError(
                f"{where}: duplicate image id {image_id} (also images[{image_pos[image_id]}])"
            )
        image_pos[image_id] = i
        name = img.get("file_name")
        try:
            safe_relative_name(name)
        except UnsafePathError as exc:
            where = f"{source}: {element_name('images', i, img)}"
            raise CocoFormatError(f"{where}: 'file_name': {exc}") from None
        if name in names_seen:
            where = f"{source}: {element_name('images', i, img)}"
            raise CocoFormatError(
                f"{where}: file_name {name!r} is also used by images[{names_seen[name]}]"
            )
        names_seen[name] = i
        width, height = img.get("width"), img.get("height")
        if not (
            type(width) is int
            and type(height) is int
            and 0 < width <= max_side
            and 0 < height <= max_side
        ):  # the usual case checked at once; anything else as below
            width, height = _image_size(f"{source}: {element_name('images', i, img)}", img)
        if width * height > image_module.MAX_PIXELS:  # a typo, never a real image
            where = f"{source}: {element_name('images', i, img)}"
            raise CocoFormatError(f"{where}: size {width}x{height} is over the pixel limit")
        extra = {key: v for key, v in img.items() if key not in IMAGE_KEYS}
        records.append(ImageRecord(name, width, height, image_id, extra))

    # ---- annotations: one cheap pass to collect, then vectorised checks
    anns: list[Any] = data["annotations"]
    collected = None
    fast = keypoints is not None
    if keypoints is not None:
        # The fast parse's matrix stands for the keypoints lists only where every
        # annotation is regular and has the category's number of values; otherwise
        # the lists are parsed after all and checked as they would have been.
        if keypoints.matrix is not None and keypoints.matrix.shape[1] == 3 * k_file:
            collected = _collect_regular(anns, image_pos, cat_id, keypoints_parsed=True)
        if collected is None:
            keypoints.restore(anns)
            keypoints = None
    if collected is None:
        collected = _collect_regular(anns, image_pos, cat_id) or _collect(
            anns, image_pos, cat_id, other_cat_ids, source
        )
    rows, row_image, kp_lists, kp_owner, box_lists, box_owner, extra_annotations = collected
    if extra_annotations and fast:
        # Kept verbatim: their keys must be in the file's order, which the fast
        # parse does not keep (its annotations list the COCO fields in one order).
        raise NotFast
    n = len(rows)

    def where_row(row: int) -> str:
        return f"{source}: {element_name('annotations', rows[row], anns[rows[row]])}"

    # Box-only annotations (no keypoints, or keypoints null) are kept as instances
    # with every point not labeled; an annotation with neither is refused.
    empty = np.ones(n, dtype=bool)
    empty[np.asarray(kp_owner, dtype=np.int64)] = False
    empty[np.asarray(box_owner, dtype=np.int64)] = False
    if empty.any():
        raise CocoFormatError(
            f"{where_row(int(np.flatnonzero(empty)[0]))}: has neither 'keypoints' nor 'bbox'"
        )

    # ---- keypoints
    if keypoints is not None:  # every row has 3 * k_file integers (checked above)
        lengths = np.full(n, 3 * k_file, dtype=np.int64)
    else:
        lengths = np.fromiter(map(len, kp_lists), dtype=np.int64, count=len(kp_lists))
    bad = np.flatnonzero(lengths != 3 * k_file)
    if bad.size:
        j = int(bad[0])
        if bad.size == lengths.size and len(set(lengths.tolist())) == 1 and lengths[j] % 3 == 0:
            # Every annotation disagrees the same way: the category is what is wrong.
            raise CocoFormatError(
                f"{cat_where}: 'keypoints' names {k_file} keypoints but every annotation has "
                f"{lengths[j] // 3} ({lengths[j]} values)"
            )
        raise CocoFormatError(
            f"{where_row(kp_owner[j])}: 'keypoints' has {lengths[j]} values, expected "
            f"{3 * k_file} ({k_file} keypoints x 3) as {cat_where.split(': ', 1)[-1]} says"
        )
    # JSON integers only (the usual COCO file) stay int64: exact, and cheaper checks.
    if keypoints is not None:
        given = keypoints.matrix.reshape(n, k_file, 3)
    else:
        given = _number_matrix(
            kp_lists, 3 * k_file, kp_owner, rows, anns, source, "keypoints", integers=True
        ).reshape(len(kp_lists), k_file, 3)
    integer_input = given.dtype.kind in "iub"  # all JSON integers: the usual COCO case
    finite = np.ones(given.shape[:2], bool) if integer_input else np.isfinite(given).all(axis=2)
    if not finite.all():
        j, p = (int(x[0]) for x in np.nonzero(~finite))
        raise CocoFormatError(
            f"{where_row(kp_owner[j])}: keypoint {p} ({file_names[p]!r}) has a non-finite "
            f"value {given[j, p].tolist()}"
        )
    if not integer_input and given.size:
        too_big = (np.abs(given[:, :, :2]) > FLOAT32_MAX).any(axis=2)
        if too_big.any():
            j, p = (int(x[0]) for x in np.nonzero(too_big))
            raise CocoFormatError(
                f"{where_row(kp_owner[j])}: keypoint {p} ({file_names[p]!r}) has coordinates "
                f"{given[j, p, :2].tolist()} beyond the float32 range"
            )
    vis_given = given[:, :, 2]
    # Integers are 0, 1 or 2 iff they lie in [0, 2]: two reductions decide the usual case.
    if not integer_input or (vis_given.size and (vis_given.min() < 0 or vis_given.max() > 2)):
        bad_vis = ~((vis_given == 0) | (vis_given == 1) | (vis_given == 2))
        if bad_vis.any():
            j, p = (int(x[0]) for x in np.nonzero(bad_vis))
            raise CocoFormatError(
                f"{where_row(kp_owner[j])}: keypoint {p} ({file_names[p]!r}) has visibility "
                f"{vis_given[j, p]:g}, expected 0, 1 or 2"
            )
    owner = np.asarray(kp_owner, dtype=np.int64)
    if owner.size == n:  # every row has keypoints (owner is 0..n-1)
        file_xy = given[:, :, :2].astype(np.float32)
        file_vis = vis_given.astype(np.uint8)
    else:
        file_xy = np.zeros((n, k_file, 2), dtype=np.float32)
        file_vis = np.zeros((n, k_file), dtype=np.uint8)
        file_xy[owner] = given[:, :, :2]
        file_vis[owner] = vis_given
    # Integer input: whether an unlabeled point has non-zero coordinates (else the
    # zeroing below changes nothing: an integer 0 is +0.0 in float32). A point's two
    # float32 read as one uint64 are zero iff both are +0.0 (integers give no -0.0).
    stray = (
        bool(((file_xy.view(np.uint64)[:, :, 0] != 0) & (file_vis == 0)).any())
        if integer_input
        else True
    )
    if stray:
        file_xy[file_vis == 0] = 0.0
    # Rows whose export (from float32) would not reproduce the input exactly.
    kp_stash = np.zeros(n, dtype=bool)
    if identity and owner.size and integer_input:
        # Integers below 2**24 are exact in float32 and are written back as integers;
        # only unlabeled points with non-zero coordinates are not reproduced.
        coords = given[:, :, :2]
        # Cheap whole-array tests first; the per-row reduction runs only if one fails.
        # (file_xy is coords in float32, unchanged when not stray: rounding keeps
        # the order, and 2**24 is exact, so the tests on it are the tests on coords.)
        if stray or file_xy.max() >= 2**24 or file_xy.min() <= -(2**24):
            kp_stash[owner] = ((vis_given == 0)[:, :, None] & (coords != 0)).any(axis=(1, 2)) | (
                np.abs(coords) >= 2**24
            ).any(axis=(1, 2))
        if keypoints is not None:  # the stash keeps the file's list
            for row in np.flatnonzero(kp_stash).tolist():
                anns[rows[row]]["keypoints"] = given[row].reshape(-1).tolist()
    elif identity and owner.size:
        rebuilt = np.concatenate([shortest_decimals(file_xy[owner]), vis_given[:, :, None]], axis=2)
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
    del given, vis_given  # the file's numbers (int64/float64): no longer needed

    # ---- boxes
    box_lengths = np.fromiter(map(len, box_lists), dtype=np.int64, count=len(box_lists))
    bad = np.flatnonzero(box_lengths != 4)
    if bad.size:
        j = int(bad[0])
        raise CocoFormatError(
            f"{where_row(box_owner[j])}: 'bbox' has {box_lengths[j]} values, expected 4 "
            "(x, y, width, height)"
        )
    xywh = _number_matrix(box_lists, 4, box_owner, rows, anns, source, "bbox")
    bad = np.flatnonzero(~np.isfinite(xywh).all(axis=1) | (xywh[:, 2] < 0) | (xywh[:, 3] < 0))
    if bad.size:
        j = int(bad[0])
        raise CocoFormatError(
            f"{where_row(box_owner[j])}: 'bbox' {box_lists[j]!r} must be finite with "
            "non-negative width and height"
        )
    with np.errstate(over="ignore"):  # overflow is refused just below
        boxes = decode_xywh_boxes(xywh)
    bad = np.flatnonzero(~np.isfinite(boxes).all(axis=1))
    if bad.size:
        j = int(bad[0])
        raise CocoFormatError(
            f"{where_row(box_owner[j])}: 'bbox' {box_lists[j]!r} is beyond the float32 range"
        )
    box_stash = (encode_xywh_boxes(boxes) != xywh).any(axis=1)
    # Export writes integral values as JSON integers; keep boxes written as 15.0 so the
    # text round-trips too. Only rows holding an integral value need the type scan.
    integral_rows = np.flatnonzero(~box_stash & (xywh == np.trunc(xywh)).any(axis=1))
    for j in integral_rows.tolist():
        if any(type(v) is float and v == int(v) for v in box_lists[j]):
            box_stash[j] = True
    box_of_row = np.full(n, -1, dtype=np.int64)
    box_of_row[np.asarray(box_owner, dtype=np.int64)] = np.arange(len(box_owner))

    # ---- instances: built by CocoRows.fields, chunk by chunk if the caller wants
    has_keypoints = np.zeros(n, dtype=bool)
    has_keypoints[owner] = True
    box_of_row_stash = np.zeros(n, dtype=bool)
    box_of_row_stash[box_of_row >= 0] = box_stash[box_of_row[box_of_row >= 0]]
    return CocoRows(
        source=source,
        skeleton=skeleton,
        records=records,
        anns=anns,
        rows=rows,
        row_image=row_image,
        xy=xy,
        vis=vis,
        boxes=boxes,
        box_index=box_of_row.tolist(),
        counts=file_num_labeled.tolist(),
        special=(kp_stash | box_of_row_stash | ~has_keypoints).tolist(),
        kp_stash=kp_stash,
        box_stash=box_of_row_stash,
        identity=identity,
        mapping=mapping,
        k_file=k_file,
        category_id=cat_id,
        info=info,
        licenses=licenses,
        category=category if identity else None,
        extra_categories=[c for i, c in enumerate(categories) if i != cat_index],
        extra_annotations=extra_annotations,
        extra={key: v for key, v in data.items() if key not in TOP_KEYS},
    )


def _image_size(where: str, img: dict[str, Any]) -> tuple[int, int]:
    """``(width, height)`` of an image entry, or the error that names what is wrong."""
    size = []
    for key in ("width", "height"):
        value = img.get(key)
        if not is_finite_number(value) or value != int(value):
            raise CocoFormatError(f"{where}: {key!r} must be an integer, got {value!r}")
        if value <= 0:
            raise CocoFormatError(f"{where}: {key!r} must be positive, got {value!r}")
        size.append(int(value))
    return size[0], size[1]


_Collected = tuple[list[int], list[int], list[Any], list[int], list[Any], list[int], list[Any]]


def _collect_regular(
    anns: list[Any], image_pos: dict[int, int], cat_id: Any, *, keypoints_parsed: bool = False
) -> _Collected | None:
    """:func:`_collect` of a file where every annotation is an object of the keypoint
    category with a new integer id, a known image and list-or-null keypoints and bbox,
    column by column; None if any is not (then :func:`_collect` names the bad one).

    With ``keypoints_parsed`` (the fast parse's matrix holds every annotation's
    keypoints) the keypoints are not looked at: every row owns a list, and the
    keypoints lists returned are None."""
    # Type tests as sets of types (one C-level pass each), not per-row Python.
    if set(map(type, anns)) - {dict}:
        return None
    ids = [ann.get("id") for ann in anns]
    if set(map(type, ids)) - {int} or len(set(ids)) != len(ids):
        return None
    image_ids = [ann.get("image_id") for ann in anns]
    if set(map(type, image_ids)) - {int}:
        return None
    positions = list(map(image_pos.get, image_ids))
    if None in positions:
        return None
    categories = [ann.get("category_id") for ann in anns]
    if categories.count(cat_id) != len(categories):  # (== as the general path's !=)
        return None
    boxes = [ann.get("bbox") for ann in anns]
    if set(map(type, boxes)) - {list, type(None)}:
        return None
    box_owner = (
        [r for r, b in enumerate(boxes) if b is not None]
        if None in boxes
        else list(range(len(boxes)))
    )
    kp_lists: Any
    if keypoints_parsed:
        kp_owner, kp_lists = list(range(len(anns))), None
    else:
        kps = [ann.get("keypoints") for ann in anns]
        if set(map(type, kps)) - {list, type(None)}:
            return None
        kp_owner = [r for r, k in enumerate(kps) if k is not None]
        kp_lists = [kps[r] for r in kp_owner]
    return (
        list(range(len(anns))), positions, kp_lists, kp_owner,
        [boxes[r] for r in box_owner], box_owner, [],
    )  # fmt: skip


def _collect(
    anns: list[Any], image_pos: dict[int, int], cat_id: Any, other_cat_ids: set[Any], source: str
) -> _Collected:
    """Annotation index, image position, keypoints and bbox lists of the rows (the
    keypoint-category annotations) and the other categories' annotations; raises
    :class:`CocoFormatError` naming the first bad annotation."""
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
        if not is_int(ann_id):
            raise CocoFormatError(
                f"{source}: {element_name('annotations', a, ann)}: 'id' must be an integer, "
                f"got {ann_id!r}"
            )
        if ann_id in ann_seen:
            raise CocoFormatError(
                f"{source}: {element_name('annotations', a, ann)}: duplicate annotation id "
                f"(also annotations[{ann_seen[ann_id]}])"
            )
        ann_seen[ann_id] = a
        image_id = ann.get("image_id")
        position = image_pos.get(image_id) if is_int(image_id) else None
        if position is None:
            raise CocoFormatError(
                f"{source}: {element_name('annotations', a, ann)}: 'image_id' {image_id!r} is not "
                "the id of any image"
            )
        if ann.get("category_id") != cat_id:
            if ann.get("category_id") not in other_cat_ids:
                raise CocoFormatError(
                    f"{source}: {element_name('annotations', a, ann)}: 'category_id' "
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
                _fail_values(
                    source, element_name("annotations", a, ann), keypoints, "keypoints", None
                )
            kp_lists.append(keypoints)
            kp_owner.append(row)
        bbox = ann.get("bbox")
        if bbox is not None:
            if type(bbox) is not list:
                _fail_values(source, element_name("annotations", a, ann), bbox, "bbox", 4)
            box_lists.append(bbox)
            box_owner.append(row)
    return rows, row_image, kp_lists, kp_owner, box_lists, box_owner, extra_annotations
