"""Preset templates shipped as YAML data files in ``skeleton/presets/``."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from posekit.skeleton.template import Skeleton, SkeletonError

__all__ = ["get_preset", "list_presets", "load_template"]


def _preset_dir():
    return resources.files("posekit.skeleton").joinpath("presets")


@cache
def list_presets() -> tuple[str, ...]:
    """Names of the shipped presets, sorted."""
    return tuple(
        sorted(p.name[: -len(".yaml")] for p in _preset_dir().iterdir() if p.name.endswith(".yaml"))
    )


@cache
def get_preset(name: str) -> Skeleton:
    """Load a shipped preset by name (``coco17``, ``mediapipe33``, ...)."""
    key = name.lower().replace("-", "").replace("_", "")
    for preset in list_presets():
        if preset.replace("_", "") == key:
            resource = _preset_dir().joinpath(f"{preset}.yaml")
            data = yaml.safe_load(resource.read_text(encoding="utf-8"))
            return Skeleton.from_dict(data, source=f"preset {preset}")
    raise SkeletonError(f"unknown template preset {name!r}; available: {', '.join(list_presets())}")


def load_template(spec: str | Path | Skeleton) -> Skeleton:
    """A template from a preset name, a YAML/JSON file path, or a Skeleton."""
    if isinstance(spec, Skeleton):
        return spec
    path = Path(spec)
    if path.suffix.lower() in {".yaml", ".yml", ".json"} or path.exists():
        return Skeleton.from_file(path)
    return get_preset(str(spec))
