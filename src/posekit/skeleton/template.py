"""Skeleton templates: ordered keypoint names, edges, flip pairs, OKS sigmas, colours.

Edges and flip pairs are declared by keypoint *name* and compiled once into index
arrays (``edge_index``, ``flip_index``). A template is never guessed from a number
of keypoints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from posekit.skeleton.derived import DerivedKeypoint, parse_derived

__all__ = ["Skeleton", "SkeletonError", "side_of"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")

# Colours by body side (RGB). Left is the subject's left.
SIDE_COLORS: dict[str, tuple[int, int, int]] = {
    "left": (0, 200, 80),
    "right": (255, 128, 0),
    "center": (51, 153, 255),
}


#: The keys a template file may have (anything else is refused, naming the key).
TEMPLATE_KEYS = (
    "name", "display_name", "description", "category", "keypoints", "sigmas",
    "sigmas_source", "default_sigma", "edges", "flip_pairs", "keypoint_colors",
    "edge_colors", "aliases", "derived",
)  # fmt: skip


class SkeletonError(ValueError):
    """A skeleton template is malformed; the message names the offending element."""


def side_of(name: str) -> str:
    """Body side implied by a keypoint name: ``left``, ``right`` or ``center``."""
    lowered = name.lower()
    tokens = re.split(r"[_\-. ]", lowered)
    if "left" in tokens or lowered.startswith(("left", "l_")) or lowered.endswith("_l"):
        return "left"
    if "right" in tokens or lowered.startswith(("right", "r_")) or lowered.endswith("_r"):
        return "right"
    return "center"


def _color(value: Any, where: str) -> tuple[int, int, int]:
    if isinstance(value, str):
        text = value.lstrip("#")
        if len(text) != 6 or not re.fullmatch(r"[0-9a-fA-F]{6}", text):
            raise SkeletonError(f"{where}: colour {value!r} is not '#rrggbb' or [r, g, b]")
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    if (
        isinstance(value, Sequence)
        and len(value) == 3
        and all(isinstance(c, int | float) and 0 <= c <= 255 for c in value)
    ):
        return (int(value[0]), int(value[1]), int(value[2]))
    raise SkeletonError(f"{where}: colour {value!r} is not '#rrggbb' or [r, g, b] in 0..255")


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A keypoint template.

    Attributes:
        name: Short identifier, e.g. ``"coco17"``.
        keypoints: Ordered keypoint names, ``K`` of them.
        edges: Pairs of keypoint names drawn as limbs.
        flip_pairs: Left/right pairs of keypoint names swapped by a horizontal flip.
        sigmas: ``(K,) float64`` OKS per-keypoint sigmas (COCO convention: the
            "sigma" values already divided by 10, e.g. 0.026 for the nose).
        keypoint_colors: ``(K, 3) uint8`` RGB colours.
        edge_colors: ``(E, 3) uint8`` RGB colours.
        category: Object category name written to COCO files (``"person"``).
        display_name: Human readable name.
        sigmas_source: Where the sigmas come from (paper, dataset, or "uniform").
        aliases: Other names this template's keypoints go by in other layouts,
            used by :func:`posekit.skeleton.keypoint_mapping`.
        derived: Keypoints that can be computed from other named points when a
            source lacks them (``pelvis`` = mean of the hips), see
            :mod:`posekit.skeleton.derived`; used by
            :func:`posekit.skeleton.derived_mapping`.

    Example:
        >>> from posekit.skeleton import get_preset
        >>> coco = get_preset("coco17")
        >>> coco.index("left_wrist")
        9
    """

    name: str
    keypoints: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    flip_pairs: tuple[tuple[str, str], ...]
    sigmas: np.ndarray
    keypoint_colors: np.ndarray
    edge_colors: np.ndarray
    category: str = "person"
    display_name: str = ""
    sigmas_source: str = ""
    description: str = ""
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    derived: Mapping[str, DerivedKeypoint] = field(default_factory=dict)
    # compiled
    edge_index: np.ndarray = field(init=False, repr=False)
    flip_index: np.ndarray = field(init=False, repr=False)
    _positions: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SkeletonError("template 'name' must be a non-empty string")
        kps = tuple(self.keypoints)
        if not kps:
            raise SkeletonError(f"template {self.name!r}: 'keypoints' is empty")
        positions: dict[str, int] = {}
        for i, kp in enumerate(kps):
            if not isinstance(kp, str) or not _NAME_RE.match(kp):
                raise SkeletonError(
                    f"template {self.name!r}: keypoint #{i} {kp!r} is not a valid name "
                    "(letters, digits, '_', '-', '.')"
                )
            if kp in positions:
                raise SkeletonError(
                    f"template {self.name!r}: duplicate keypoint name {kp!r} "
                    f"(positions {positions[kp]} and {i})"
                )
            positions[kp] = i
        k = len(kps)

        def lookup(kp: Any, what: str) -> int:
            if kp not in positions:
                raise SkeletonError(f"template {self.name!r}: {what} names unknown keypoint {kp!r}")
            return positions[kp]

        edge_index = np.zeros((len(self.edges), 2), dtype=np.int64)
        for e, pair in enumerate(self.edges):
            number = e + 1  # people count edges from 1, as they appear in the file
            if len(pair) != 2:
                raise SkeletonError(
                    f"template {self.name!r}: edge #{number} {pair!r} is not a pair"
                )
            a, b = pair
            edge_index[e] = (lookup(a, f"edge #{number}"), lookup(b, f"edge #{number}"))
            if a == b:
                raise SkeletonError(f"template {self.name!r}: edge #{number} joins {a!r} to itself")

        flip_index = np.arange(k, dtype=np.int64)
        seen: dict[str, str] = {}
        for p, pair in enumerate(self.flip_pairs):
            if len(pair) != 2:
                raise SkeletonError(
                    f"template {self.name!r}: flip pair #{p} {pair!r} is not a pair"
                )
            a, b = pair
            ia, ib = lookup(a, f"flip pair #{p}"), lookup(b, f"flip pair #{p}")
            if a == b:
                raise SkeletonError(
                    f"template {self.name!r}: flip pair #{p} pairs {a!r} with itself"
                )
            for kp, partner in ((a, b), (b, a)):
                if kp in seen and seen[kp] != partner:
                    raise SkeletonError(
                        f"template {self.name!r}: flip pairs are not symmetric: {kp!r} is "
                        f"paired with both {seen[kp]!r} and {partner!r}"
                    )
                seen[kp] = partner
            flip_index[ia], flip_index[ib] = ib, ia

        sigmas = np.asarray(self.sigmas, dtype=np.float64).reshape(-1)
        if sigmas.shape != (k,):
            raise SkeletonError(
                f"template {self.name!r}: wrong number of sigmas: expected {k} "
                f"(one per keypoint), got {sigmas.shape[0]}"
            )
        if not np.all(np.isfinite(sigmas)) or np.any(sigmas <= 0):
            bad = int(np.flatnonzero(~np.isfinite(sigmas) | (sigmas <= 0))[0])
            raise SkeletonError(
                f"template {self.name!r}: sigma for {kps[bad]!r} must be a positive number, "
                f"got {sigmas[bad].item()!r}"
            )
        kc = np.asarray(self.keypoint_colors, dtype=np.uint8).reshape(-1, 3)
        if kc.shape != (k, 3):
            raise SkeletonError(
                f"template {self.name!r}: expected {k} keypoint colours, got {kc.shape[0]}"
            )
        ec = np.asarray(self.edge_colors, dtype=np.uint8).reshape(-1, 3)
        if ec.shape != (len(self.edges), 3):
            raise SkeletonError(
                f"template {self.name!r}: expected {len(self.edges)} edge colours, "
                f"got {ec.shape[0]}"
            )
        sigmas.setflags(write=False)
        kc.setflags(write=False)
        ec.setflags(write=False)
        edge_index.setflags(write=False)
        flip_index.setflags(write=False)
        aliases = {str(key): tuple(v) for key, v in dict(self.aliases).items()}
        for key in aliases:
            lookup(key, "aliases")
        try:
            derived = parse_derived(self.derived or {}, kps, f"template {self.name!r}")
        except ValueError as exc:
            raise SkeletonError(str(exc)) from None
        set_ = object.__setattr__
        set_(self, "keypoints", kps)
        set_(self, "edges", tuple((str(a), str(b)) for a, b in self.edges))
        set_(self, "flip_pairs", tuple((str(a), str(b)) for a, b in self.flip_pairs))
        set_(self, "sigmas", sigmas)
        set_(self, "keypoint_colors", kc)
        set_(self, "edge_colors", ec)
        set_(self, "aliases", aliases)
        set_(self, "derived", derived)
        set_(self, "edge_index", edge_index)
        set_(self, "flip_index", flip_index)
        set_(self, "_positions", positions)
        if not self.display_name:
            set_(self, "display_name", self.name)

    # ------------------------------------------------------------------ access
    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def index(self, keypoint: str) -> int:
        """Position of ``keypoint``; raises ``KeyError`` naming the template."""
        try:
            return self._positions[keypoint]
        except KeyError:
            raise KeyError(f"keypoint {keypoint!r} is not in template {self.name!r}") from None

    def __contains__(self, keypoint: object) -> bool:
        return keypoint in self._positions

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Skeleton):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self.keypoints))

    # ------------------------------------------------------------- (de)serial
    def to_dict(self) -> dict[str, Any]:
        """Plain dict, the same layout the YAML/JSON files use."""
        out: dict[str, Any] = {
            "name": self.name,
            "display_name": self.display_name,
            "category": self.category,
            "description": self.description,
            "keypoints": list(self.keypoints),
            "edges": [list(e) for e in self.edges],
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "sigmas": [float(s) for s in self.sigmas],
            "sigmas_source": self.sigmas_source,
            "keypoint_colors": [list(map(int, c)) for c in self.keypoint_colors],
            "edge_colors": [list(map(int, c)) for c in self.edge_colors],
        }
        if self.aliases:
            out["aliases"] = {k: list(v) for k, v in self.aliases.items()}
        if self.derived:
            out["derived"] = {k: v.to_value() for k, v in self.derived.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "template") -> Skeleton:
        """Build and validate a template from a dict (the YAML/JSON layout).

        ``keypoint_colors`` may be a list (one per keypoint) or a mapping from
        keypoint name to colour; missing colours are derived from the body side.
        ``sigmas`` may be omitted only if ``default_sigma`` is given (documented
        as ``sigmas_source: uniform``).
        """
        if not isinstance(data, Mapping):
            raise SkeletonError(f"{source}: expected a mapping at the top level")
        unknown = sorted(str(key) for key in data if key not in TEMPLATE_KEYS)
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], TEMPLATE_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SkeletonError(
                f"{source}: unknown key {unknown[0]!r}{hint}; known keys: "
                f"{', '.join(sorted(TEMPLATE_KEYS))}"
            )
        for key in ("name", "keypoints"):
            if key not in data:
                raise SkeletonError(f"{source}: missing required key {key!r}")
        keypoints = data["keypoints"]
        if not isinstance(keypoints, list):
            raise SkeletonError(f"{source}: 'keypoints' must be a list of names")
        k = len(keypoints)
        sigmas = data.get("sigmas")
        sigmas_source = str(data.get("sigmas_source", ""))
        if sigmas is None:
            if "default_sigma" not in data:
                raise SkeletonError(
                    f"{source}: missing 'sigmas' (one OKS sigma per keypoint); give them, "
                    "or give 'default_sigma' to use one value for all keypoints"
                )
            sigmas = [float(data["default_sigma"])] * k
            sigmas_source = sigmas_source or "uniform default_sigma"
        if not isinstance(sigmas, list):
            raise SkeletonError(f"{source}: 'sigmas' must be a list of numbers")
        try:
            sigmas_arr = np.asarray([float(s) for s in sigmas], dtype=np.float64)
        except (TypeError, ValueError):
            raise SkeletonError(f"{source}: 'sigmas' must be a list of numbers") from None
        edges = data.get("edges", []) or []
        flips = data.get("flip_pairs", []) or []
        for what, seq in (("edges", edges), ("flip_pairs", flips)):
            if not isinstance(seq, list) or not all(isinstance(p, list | tuple) for p in seq):
                raise SkeletonError(f"{source}: {what!r} must be a list of [name, name] pairs")
        kc_raw = data.get("keypoint_colors")
        if isinstance(kc_raw, Mapping):
            kc = [
                _color(kc_raw[n], f"{source}: colour of {n!r}")
                if n in kc_raw
                else SIDE_COLORS[side_of(str(n))]
                for n in keypoints
            ]
            unknown = set(kc_raw) - {str(n) for n in keypoints}
            if unknown:
                raise SkeletonError(
                    f"{source}: keypoint_colors names unknown keypoint {sorted(unknown)[0]!r}"
                )
        elif isinstance(kc_raw, list):
            kc = [_color(c, f"{source}: keypoint colour #{i}") for i, c in enumerate(kc_raw)]
        else:
            kc = [SIDE_COLORS[side_of(str(n))] for n in keypoints]
        ec_raw = data.get("edge_colors")
        if isinstance(ec_raw, list):
            ec = [_color(c, f"{source}: edge colour #{i}") for i, c in enumerate(ec_raw)]
        else:
            ec = []
            for pair in edges:
                sides = {side_of(str(n)) for n in pair}
                side = sides.pop() if len(sides) == 1 else "center"
                ec.append(SIDE_COLORS[side])
        aliases = data.get("aliases") or {}
        if not isinstance(aliases, Mapping):
            raise SkeletonError(f"{source}: 'aliases' must map keypoint names to lists of names")
        derived = data.get("derived") or {}
        if not isinstance(derived, Mapping):
            raise SkeletonError(f"{source}: 'derived' must map keypoint names to definitions")
        return cls(
            name=str(data["name"]),
            keypoints=tuple(keypoints),
            edges=tuple(tuple(e) for e in edges),
            flip_pairs=tuple(tuple(p) for p in flips),
            sigmas=sigmas_arr,
            keypoint_colors=np.asarray(kc, dtype=np.uint8).reshape(-1, 3),
            edge_colors=np.asarray(ec, dtype=np.uint8).reshape(-1, 3),
            category=str(data.get("category", "person")),
            display_name=str(data.get("display_name", "")),
            sigmas_source=sigmas_source,
            description=str(data.get("description", "")),
            aliases={
                str(a): tuple(str(x) for x in (v if isinstance(v, list) else [v]))
                for a, v in aliases.items()
            },
            derived=derived,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Skeleton:
        """Load a custom template from a ``.yaml``/``.yml`` or ``.json`` file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SkeletonError(f"{path}: cannot read template file: {exc}") from None
        try:
            is_json = path.suffix.lower() == ".json"
            data = json.loads(text) if is_json else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise SkeletonError(f"{path}: not valid {path.suffix.lstrip('.')}: {exc}") from None
        return cls.from_dict(data, source=str(path))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def coco_category(self, category_id: int = 1) -> dict[str, Any]:
        """COCO ``categories`` entry; the skeleton uses 1-based indices as COCO does."""
        return {
            "id": category_id,
            "name": self.category,
            "supercategory": self.category,
            "keypoints": list(self.keypoints),
            "skeleton": [[int(a) + 1, int(b) + 1] for a, b in self.edge_index],
        }
