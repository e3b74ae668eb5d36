"""Which models can run here: backends of the registry whose extra is installed, and
checkpoints found on disk (the local Hugging Face cache and configured folders).

Nothing is imported or downloaded: extras are checked with ``find_spec`` (see
:func:`posekit.models.catalog.list_backends`) and checkpoints by their files
(``config.json`` with its ``model_type``; ``*.pt`` weights for Ultralytics). The web
app lists these (``GET /api/models``) so that it never offers a model that cannot
run; the entry's ``reason`` says why one is unavailable.

Example:
    >>> [m.spec for m in available_models() if m.task == "pose" and m.available][:1]
    ['blazepose']
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from posekit.models.catalog import list_backends, list_checkpoints
from posekit.models.registry import DETECTORS, POSE_ESTIMATORS

__all__ = ["DEFAULT_MODEL", "AvailableModel", "available_models", "hf_cache_dir"]

#: The model that runs offline with the base install's extra (bundled model files).
DEFAULT_MODEL = "blazepose"

#: ``config.json`` ``model_type`` -> (backend, task)
_MODEL_TYPES = {"vitpose": ("vitpose", "pose"), "rt_detr": ("rtdetr", "detector")}
_MAX_FOLDER_ENTRIES = 500


@dataclass(frozen=True)
class AvailableModel:
    """A model choice.

    Attributes:
        spec: The model spec to pass to the registry (``vitpose:/models/vitpose-b``).
        backend: Backend name (a key of the registry tables).
        task: ``"detector"`` or ``"pose"``.
        title: Short human label.
        location: ``"bundled"`` (ships with its extra), ``"hf-cache"``, ``"folder"``
            or ``"download"`` (known checkpoint not on this machine).
        available: Whether it can run here without a download.
        reason: Why not, when it cannot (the extra to install, or "not downloaded").
        default: The offline default.
        path: The files on disk, if any.
    """

    spec: str
    backend: str
    task: str
    title: str
    location: str
    available: bool
    reason: str | None = None
    default: bool = False
    path: str | None = None


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache (``HF_HUB_CACHE``, ``HF_HOME/hub`` or ``~/.cache``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def _model_type(folder: Path) -> str | None:
    config = folder / "config.json"
    try:
        if not config.is_file() or config.stat().st_size > 1_000_000:
            return None
        value = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _cached_snapshot(cache: Path, repo_id: str) -> Path | None:
    """The newest snapshot folder of a hub model in the cache holding a config.json."""
    snapshots = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    try:
        found = [s for s in snapshots.iterdir() if (s / "config.json").is_file()]
    except OSError:
        return None
    return max(found, key=lambda s: s.stat().st_mtime) if found else None


def _cache_repos(cache: Path) -> list[str]:
    try:
        names = [p.name for p in cache.iterdir() if p.name.startswith("models--")]
    except OSError:
        return []
    return sorted(n[len("models--") :].replace("--", "/", 1) for n in names)


def _folder_models(folders: Iterable[Path]) -> Iterable[tuple[str, str, Path]]:
    """(backend, task, path) of the checkpoints in ``folders`` (each folder itself, its
    sub-folders, and ``*.pt`` files)."""
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            continue
        try:
            entries = sorted(folder.iterdir())[:_MAX_FOLDER_ENTRIES]
        except OSError:
            continue
        for candidate in [folder, *entries]:
            if candidate.is_dir():
                known = _MODEL_TYPES.get(_model_type(candidate) or "")
                if known:
                    yield known[0], known[1], candidate.resolve()
            elif candidate.suffix == ".pt":
                task = "pose" if "pose" in candidate.stem.lower() else "detector"
                yield "yolo", task, candidate.resolve()


def available_models(
    model_dirs: Sequence[Path | str] = (), *, hf_cache: Path | None = None
) -> list[AvailableModel]:
    """Every model choice: bundled backends, known checkpoints (found or not), and the
    checkpoints in the Hugging Face cache and in ``model_dirs``.

    Args:
        model_dirs: Folders holding checkpoints (a checkpoint folder with
            ``config.json``, folders of them, or Ultralytics ``*.pt`` files).
        hf_cache: The hub cache to look in (default :func:`hf_cache_dir`).
    """
    backends = {b.name: b for b in list_backends()}
    cache = hf_cache or hf_cache_dir()

    def missing_extra(backend: str) -> str | None:
        info = backends.get(backend)
        if info is None or info.installed:
            return None
        return f"needs the [{info.extra}] extra: pip install 'posekit[{info.extra}]'"

    out: list[AvailableModel] = []
    seen: set[tuple[str, str]] = set()

    def add(model: AvailableModel) -> None:
        key = (model.spec, model.task)
        if key not in seen:
            seen.add(key)
            out.append(model)

    blaze = missing_extra("blazepose")
    for task in ("detector", "pose"):
        add(
            AvailableModel(
                DEFAULT_MODEL, "blazepose", task, "BlazePose (bundled, offline default)",
                "bundled", blaze is None, blaze, default=True,
            )
        )  # fmt: skip
    for backend, task, path in _folder_models(Path(p) for p in model_dirs):
        reason = missing_extra(backend)
        add(
            AvailableModel(
                f"{backend}:{path}", backend, task, f"{backend} {path.name} (folder)",
                "folder", reason is None, reason, path=str(path),
            )
        )  # fmt: skip
    known = {c.spec.split(":", 1)[1]: c for c in list_checkpoints() if ":" in c.spec}
    for repo_id in _cache_repos(cache):
        snapshot = _cached_snapshot(cache, repo_id)
        kind = _MODEL_TYPES.get(_model_type(snapshot) or "") if snapshot else None
        if kind is None:
            continue
        reason = missing_extra(kind[0])
        add(
            AvailableModel(
                f"{kind[0]}:{repo_id}", kind[0], kind[1], f"{repo_id} (cached)",
                "hf-cache", reason is None, reason, path=str(snapshot),
            )
        )  # fmt: skip
    for repo_id, checkpoint in known.items():
        if checkpoint.backend == "yolo":
            continue  # Ultralytics weights: found as *.pt files in model_dirs
        task = "pose" if checkpoint.task == "pose" else "detector"
        add(
            AvailableModel(
                checkpoint.spec, checkpoint.backend, task, f"{repo_id} (not downloaded)",
                "download", False, "not in the local Hugging Face cache (download it first)",
            )
        )  # fmt: skip
    tables = {"detector": DETECTORS, "pose": POSE_ESTIMATORS}
    return [m for m in out if m.backend in tables[m.task]]
