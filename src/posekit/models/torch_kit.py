"""The torch / Hugging Face toolkit shared by the torch backends (ViTPose, RT-DETR).

Device choice (and a log line naming the device that actually runs), fp16
policy, batching, checkpoint loading that never hangs on a machine without
network, and the close / context-manager lifecycle. torch and transformers are
imported inside the functions, never when this module is imported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from posekit.models.base import ModelError

__all__ = [
    "INSTALL_HINT",
    "TorchBackend",
    "batched",
    "describe_device",
    "hf_offline",
    "import_torch_transformers",
    "load_pretrained",
    "resolve_half",
    "select_device",
]

log = logging.getLogger(__name__)

INSTALL_HINT = "install the extra: pip install 'posekit[transformers]'"

T = TypeVar("T")


def import_torch_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ModelError(
            f"this backend needs torch and transformers ({exc}); {INSTALL_HINT}"
        ) from None
    return torch, transformers


def hf_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or the older ``TRANSFORMERS_OFFLINE``) is set."""
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def select_device(requested: str | None = None) -> str:
    """Torch device string: ``requested`` (validated) or the best available one.

    ``None`` or ``"auto"`` picks CUDA, then Apple MPS, then CPU.

    Raises:
        ModelError: the requested device is not available.
    """
    torch, _ = import_torch_transformers()
    wanted = (requested or "auto").strip().lower()
    if wanted == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {requested!r} requested but CUDA is not available")
    if wanted == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ModelError("device 'mps' requested but Apple MPS is not available")
    try:
        torch.device(wanted)
    except RuntimeError as exc:
        raise ModelError(f"invalid device {requested!r}: {exc}") from None
    return wanted


def _looks_like_path(model: str) -> bool:
    # A hub id is "name" or "org/name"; anything else with separators is a folder.
    return (
        model.startswith((".", "/", "~", "\\"))
        or model.count("/") > 1
        or "\\" in model
        or (len(model) > 1 and model[1] == ":")
    )


def load_pretrained(
    loader: Callable[..., Any],
    model: str,
    *,
    what: str,
    spec_name: str,
    revision: str | None = None,
    local_files_only: bool = False,
    **kwargs: Any,
) -> Any:
    """Call a transformers ``from_pretrained`` the posekit way.

    Local folders load directly. Hub ids are looked up in the local cache first
    (no network); only if they are missing, and neither ``local_files_only`` nor
    ``HF_HUB_OFFLINE`` forbid it, is the hub asked, once. Any failure becomes a
    :class:`ModelError` that says how to get the files, so a machine without
    network fails fast instead of retrying.

    Args:
        loader: e.g. ``VitPoseForPoseEstimation.from_pretrained``.
        model: hub id or folder.
        what: human description for messages (``"ViTPose checkpoint"``).
        spec_name: spec prefix for messages (``"vitpose"``).
        revision: hub revision (branch, tag or commit).
        local_files_only: never contact the hub.
        **kwargs: passed to ``loader``.
    """
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(
                f"{what} {model!r} is a file; pass the folder that holds config.json and "
                "model.safetensors"
            )
        try:
            return loader(str(path), local_files_only=True, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load {what} from folder {str(path)!r}: {exc}") from None
    if _looks_like_path(model):
        raise ModelError(f"{what} folder {model!r} does not exist")
    offline = local_files_only or hf_offline()
    try:
        return loader(model, local_files_only=True, revision=revision, **kwargs)
    except (OSError, ValueError) as cached_exc:
        if offline:
            raise ModelError(
                f"{what} {model!r} is not in the local Hugging Face cache and downloads "
                f"are off (HF_HUB_OFFLINE / local_files_only). Get it on a machine with "
                f"network: `hf download {model}` (then copy ~/.cache/huggingface/hub), or "
                f"save it to a folder and use '{spec_name}:/path/to/folder'. "
                f"({type(cached_exc).__name__}: {str(cached_exc).splitlines()[0]})"
            ) from None
    try:
        return loader(model, local_files_only=False, revision=revision, **kwargs)
    except Exception as exc:  # hub errors come in many types; all mean "not loadable"
        raise ModelError(
            f"cannot download {what} {model!r}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}. Check the id and your "
            f"network, or download it elsewhere (`hf download {model}`) and use "
            f"'{spec_name}:/path/to/folder'; set HF_HUB_OFFLINE=1 to never try the network."
        ) from None


def resolve_half(device: str, half: bool | None) -> bool:
    """fp16 or not on ``device``: ``half`` if given, else True on CUDA only.

    Raises:
        ModelError: fp16 was asked for on the CPU.
    """
    resolved = device.startswith("cuda") if half is None else bool(half)
    if resolved and device == "cpu":
        raise ModelError("half precision needs a CUDA or MPS device; use half=False on CPU")
    return resolved


def describe_device(device: str, half: bool) -> str:
    """``"cuda (fp16)"`` / ``"cpu"``: the device as log lines name it."""
    return f"{device}{' (fp16)' if half else ''}"


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items (numpy arrays slice as views)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class TorchBackend:
    """Lifecycle shared by the torch backends: ``close()`` frees the model (and the
    CUDA cache) and may be called again; usable as a context manager.

    Subclasses call :meth:`_setup_torch` first, then :meth:`_load_config` and
    :meth:`_place` on the model they load, and :meth:`_require_open` before running it.
    """

    #: The spec prefix (``"vitpose"``), named in loading errors.
    name: str
    #: What loading errors call the checkpoint (``"ViTPose checkpoint"``).
    _checkpoint: str
    #: The config ``model_type`` values this backend runs, and how the error for
    #: any other names what was expected (``"a ViTPose one"``).
    _model_types: frozenset[str]
    _expected: str

    _model: Any = None
    _torch: Any
    model_id: str
    device: str
    half: bool

    def _setup_torch(self, device: str | None, half: bool | None) -> Any:
        """Import torch, choose the device and the fp16 policy; returns transformers."""
        torch, transformers = import_torch_transformers()
        self._torch = torch
        self.device = select_device(device)
        self.half = resolve_half(self.device, half)
        return transformers

    def _load_config(
        self, transformers: Any, revision: str | None, local_files_only: bool
    ) -> tuple[Any, dict[str, Any]]:
        """The config of checkpoint ``self.model_id`` (through :func:`load_pretrained`),
        checked to be of one of :attr:`_model_types`, and the :func:`load_pretrained`
        keyword arguments to load the rest of the checkpoint with."""
        loading: dict[str, Any] = {
            "what": self._checkpoint,
            "spec_name": self.name,
            "revision": revision,
            "local_files_only": local_files_only,
        }
        config = load_pretrained(transformers.AutoConfig.from_pretrained, self.model_id, **loading)
        model_type = getattr(config, "model_type", None)
        if model_type not in self._model_types:
            raise ModelError(
                f"{self.model_id!r} is a {getattr(config, 'model_type', '?')!r} checkpoint, "
                f"not {self._expected}"
            )
        return config, loading

    @property
    def dtype(self) -> Any:
        """The torch dtype the model runs in (float16 or float32)."""
        return self._torch.float16 if self.half else self._torch.float32

    def _place(self, model: Any) -> Any:
        """Put ``model`` in eval mode on this backend's device and dtype."""
        model.eval()
        model.to(self.device, dtype=self.dtype)
        return model

    def _require_open(self, what: str) -> Any:
        if self._model is None:
            raise ModelError(f"{what} is closed")
        return self._model

    def close(self) -> None:
        """Free the model (and cached GPU memory)."""
        if self._model is None:
            return
        self._model = None
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
