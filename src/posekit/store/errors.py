"""Errors of the store; each message names the element concerned."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from posekit.store.records import InstanceRecord

__all__ = [
    "AlreadyExistsError",
    "NotFoundError",
    "SchemaVersionError",
    "StaleVersionError",
    "StoreError",
]


class StoreError(RuntimeError):
    """Base class of store errors; the message names the element concerned."""


class NotFoundError(StoreError, LookupError):
    """A project, dataset, item or instance does not exist."""


class AlreadyExistsError(StoreError):
    """A project or dataset with that name exists already."""


class StaleVersionError(StoreError):
    """An instance was changed by someone else since the caller read it.

    Attributes:
        instance_id: The instance concerned.
        expected_version: The version the caller sent.
        current: The instance as it is now in the database.
    """

    def __init__(self, instance_id: int, expected_version: int, current: InstanceRecord) -> None:
        super().__init__(
            f"instance {instance_id}: stale version {expected_version}, the current version is "
            f"{current.version} (changed by someone else; reload and reapply your edit)"
        )
        self.instance_id = instance_id
        self.expected_version = expected_version
        self.current = current


class SchemaVersionError(StoreError):
    """The database was written by a newer posekit (or is not a posekit database)."""
