"""Finding the template of a keypoint layout: by keypoint names, never by count.

One rule for every caller (reading COCO files, choosing OKS sigmas for
evaluation, mapping model outputs): keypoint names are compared through
:func:`normalize_keypoint_name` and the templates' aliases
(:func:`posekit.skeleton.names_mapping`), and :func:`preset_for_names` picks the
shipped preset whose keypoints are exactly the given names.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from posekit.skeleton.mapping import names_mapping, normalize_keypoint_name
from posekit.skeleton.presets import get_preset, list_presets
from posekit.skeleton.template import Skeleton, SkeletonError

__all__ = [
    "normalize_keypoint_name",
    "preset_for_names",
    "skeleton_from_category",
    "template_for_names",
    "uniform_sigma_template",
]

logger = logging.getLogger(__name__)


def _matching_presets(names: Sequence[str]) -> tuple[list[Skeleton], list[Skeleton]]:
    """Shipped presets with exactly ``names``: ``(same order, other order)``."""
    same_order: list[Skeleton] = []
    other_order: list[Skeleton] = []
    wanted = tuple(str(n) for n in names)
    for preset in list_presets():
        try:
            skeleton = get_preset(preset)
        except SkeletonError:  # a broken preset file must not block reading files
            logger.warning("skipping unreadable preset %s", preset)
            continue
        if skeleton.num_keypoints != len(wanted):
            continue
        if skeleton.keypoints == wanted:
            same_order.append(skeleton)
            continue
        try:
            # strict: every name is used; with equal counts and no -1 this is a bijection
            mapping = names_mapping(wanted, skeleton, strict=True)
        except SkeletonError:
            continue
        if np.any(mapping < 0):
            continue
        if np.array_equal(mapping, np.arange(len(wanted))):
            same_order.append(skeleton)
        else:
            other_order.append(skeleton)
    return same_order, other_order


def preset_for_names(names: Sequence[str]) -> Skeleton | None:
    """The shipped preset whose keypoints are exactly ``names``, else None.

    Every name must match one preset keypoint (by name or alias, compared through
    :func:`normalize_keypoint_name`) and every preset keypoint must be named. A
    preset in the same order wins over one that needs reordering (AIC-14 and
    CrowdPose-14 have the same names in different orders); names that match
    several presets only in another order are ambiguous and give None. The
    number of keypoints alone never selects a preset.

    Example:
        >>> preset_for_names(["Nose", "Left Eye", "Right Eye"]) is None
        True
        >>> from posekit.skeleton import get_preset
        >>> preset_for_names(get_preset("coco17").keypoints).name
        'coco17'
    """
    same_order, other_order = _matching_presets(names)
    if same_order:
        return same_order[0]
    if len(other_order) == 1:
        return other_order[0]
    return None


def template_for_names(names: Sequence[str]) -> Skeleton:
    """:func:`preset_for_names`, raising when no preset (or no single one) fits.

    Raises:
        SkeletonError: saying which names found no template and how to give one.
    """
    same_order, other_order = _matching_presets(names)
    if same_order:
        return same_order[0]
    if len(other_order) == 1:
        return other_order[0]
    if other_order:
        raise SkeletonError(
            f"the keypoints {list(names)} match several shipped skeleton templates in "
            f"another order ({', '.join(s.name for s in other_order)}); pass skeleton=... "
            "(e.g. get_preset(...) or Skeleton.from_file('my_template.yaml'))"
        )
    raise SkeletonError(
        f"no shipped skeleton template has exactly the keypoints {list(names)}; pass "
        "skeleton=... (e.g. Skeleton.from_file('my_template.yaml')) so that the OKS sigmas "
        "come from your template"
    )


# ------------------------------------------------------------- COCO categories


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
    sigmas: Sequence[float] | None = None,
    *,
    name: str | None = None,
    edges: Sequence[Sequence[str]] | None = None,
    sigmas_source: str = "",
) -> Skeleton:
    """The template of a COCO keypoint category.

    Without ``sigmas`` this is the shipped preset with the category's keypoint
    names (:func:`preset_for_names`); OKS sigmas are never guessed, so a layout
    without a preset needs them. With ``sigmas`` the template is built from the
    category: COCO ``skeleton`` edges are 1-based keypoint indices; flip pairs
    are inferred from left/right names (``left_hip``/``right_hip``,
    ``Left Hip``/``Right Hip``, ``LHip``/``RHip``). Names that are not valid
    template names (AIC's ``"Right Shoulder"``) become snake case
    (``right_shoulder``) with the original as an alias, so files in the
    original spelling still map onto the template.

    Args:
        category: The COCO category entry (``keypoints``, optional ``skeleton``, ``name``).
        sigmas: One OKS sigma per keypoint; None to use the matching preset.
        name: Template name; defaults to the category name.
        edges: Edges by template keypoint name, replacing the category's
            ``skeleton`` (some files carry a broken one).
        sigmas_source: Where the sigmas come from.

    Raises:
        SkeletonError: if the category or its edges are malformed, or no sigmas
            are given and no preset has these keypoints.
    """
    where = f"category {category.get('name', '?')!r} (id {category.get('id')})"
    raw_names = category.get("keypoints")
    if not isinstance(raw_names, list) or not all(isinstance(n, str) for n in raw_names):
        raise SkeletonError(f"{where}: 'keypoints' must be a list of names")
    if sigmas is None:
        try:
            return template_for_names(raw_names)
        except SkeletonError as exc:
            raise SkeletonError(f"{where}: {exc}") from None
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
                raise SkeletonError(
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
    return Skeleton.from_dict(data, source=where)


def uniform_sigma_template(
    name: str,
    keypoints: Sequence[str],
    edges: Sequence[Sequence[int]],
    *,
    sigma: float,
    why: str,
) -> Skeleton:
    """A template built from a file's own layout, one OKS ``sigma`` for every keypoint,
    for formats that carry no sigmas (:func:`skeleton_from_category` on it: flip pairs
    from left/right names, names made valid).

    Args:
        name: The layout's name (the category name of the template).
        keypoints: Keypoint names in file order.
        edges: ``(a, b)`` 0-based keypoint index pairs.
        sigma: The OKS sigma of every keypoint.
        why: Why the sigmas are uniform; ``sigmas_source`` is ``"uniform <sigma>: <why>"``.

    Raises:
        SkeletonError: the names or edges are malformed.
    """
    category = {
        "name": name,
        "keypoints": list(keypoints),
        "skeleton": [[a + 1, b + 1] for a, b in edges],
    }
    return skeleton_from_category(
        category, [sigma] * len(keypoints), sigmas_source=f"uniform {sigma}: {why}"
    )
