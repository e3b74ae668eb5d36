"""The summary every auto-label engine returns."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AutolabelReport"]


@dataclass
class AutolabelReport:
    """Summary of an auto-label run on a project.

    Attributes:
        processed: Items labeled (predictions written, possibly zero people).
        skipped: Items left alone because they already had instances.
        failures: ``(file_name, reason)`` of items that could not be processed.
        instances: Number of instances written.
        device: Devices the models reported, e.g. ``"detector: cpu, pose: cpu"``.
        elapsed: Wall time in seconds.
        cancelled: True if the run stopped early on request.
    """

    processed: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    instances: int = 0
    device: str = ""
    elapsed: float = 0.0
    cancelled: bool = False

    def summary(self) -> str:
        """One line for people: what was labeled, skipped, failed, on which device."""
        text = (
            f"{self.processed} items labeled ({self.instances} instances), "
            f"{self.skipped} already labeled and skipped, {len(self.failures)} failed "
            f"in {self.elapsed:.1f} s on {self.device or 'unknown device'}"
        )
        return text + (" (cancelled)" if self.cancelled else "")
