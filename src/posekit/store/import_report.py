"""What an import did (:class:`ImportReport`) and why one refused (:class:`MissingMediaError`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from posekit.store.errors import StoreError

__all__ = ["ImportReport", "MissingMediaError"]


class MissingMediaError(StoreError):
    """Images named in a dataset file are not on disk (``missing_media="error"``).

    Attributes:
        source: The dataset file.
        root: The folder the images were looked for in.
        missing: Their file names.
    """

    def __init__(self, source: Path, root: Path, missing: Sequence[str]) -> None:
        self.source, self.root, self.missing = source, root, list(missing)
        super().__init__(
            self.describe(
                "pass image_root= to look elsewhere, or missing_media='register' (or "
                "copy_media=False) to import the annotations without the images"
            )
        )

    def describe(self, remedy: str) -> str:
        """The message, with ``remedy`` saying how to fix it (the caller's words)."""
        shown = ", ".join(repr(m) for m in self.missing[:5])
        more = f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else ""
        return (
            f"{self.source}: {len(self.missing)} image(s) not found under {self.root}: "
            f"{shown}{more}; {remedy}"
        )


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        dataset: Name of the dataset imported into.
        added: Number of items added.
        instances: Number of instances added.
        skipped: ``(name, reason)`` of inputs skipped as duplicates (same file
            name already in the dataset, or same content under another name).
        failures: ``(path, reason)`` of inputs that could not be imported
            (unreadable, corrupt, too large, unsupported).
        renamed: ``(original name, stored name)`` for images whose name was
            taken in the dataset by a different image.
        missing_media: File names registered without media.
        attached: Items already in the dataset whose annotations came from this
            import (matched by file name, by content when the image is there, or by
            base name when it is not: see :mod:`posekit.store.import_matching`).
        matched: ``(name in the file, item name)`` of the images of the file taken
            for an item of the dataset of the same base name in another folder
            (``upload/18/photo.jpg`` for ``photo.jpg``), attached or skipped.
        box_only: Instances imported without any labeled point (an annotation
            with a box and no keypoints, or every point not labeled).
        elapsed: Wall time in seconds.
    """

    dataset: str
    added: int = 0
    instances: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    missing_media: list[str] = field(default_factory=list)
    attached: int = 0
    matched: list[tuple[str, str]] = field(default_factory=list)
    box_only: int = 0
    elapsed: float = 0.0

    def summary(self) -> str:
        """One line for people: counts of what was added, skipped and failed."""
        parts = [f"{self.added} images and {self.instances} instances added to {self.dataset!r}"]
        if self.attached:
            parts.append(f"annotations attached to {self.attached} images already there")
        if self.matched:
            parts.append(f"{len(self.matched)} matched by base name")
        if self.box_only:
            parts.append(f"{self.box_only} of the instances box-only (no keypoints)")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.renamed:
            parts.append(f"{len(self.renamed)} renamed")
        if self.missing_media:
            parts.append(f"{len(self.missing_media)} without media")
        if self.failures:
            parts.append(f"{len(self.failures)} failed")
        return ", ".join(parts) + f" ({self.elapsed:.1f} s)"
