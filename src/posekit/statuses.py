"""The review vocabulary: instance statuses, item statuses, the export default.

One set of words for the library, the store, the HTTP API and the web UI.
This module imports nothing from posekit, so every layer can use it.

An **instance** (one person on one image) is

* ``predicted``: written by a model, waiting for a person to review it;
* ``accepted``: drawn by a person, imported as ground truth, or a prediction a
  person accepted (training data);
* ``rejected``: a prediction a person rejected (kept so that it is not
  predicted again, never exported as a label by default).

An **item** (one image, later one video frame) is

* ``new``: nobody has looked at it yet: no model has run on it and no person
  has labeled or reviewed it (it has no instance);
* ``predicted``: model output waits for review: at least one of its instances
  is ``predicted``, or a model ran and found nobody and no person has
  confirmed that yet;
* ``reviewed``: settled by a person or an imported ground-truth file: no
  ``predicted`` instance is left (every instance is accepted or rejected, or
  there is none).

The store keeps the item status up to date on every write (one rule, see
``posekit.store``: "no prediction left => reviewed"), so the status is an
indexed column that the HTTP API filters on with exactly these words.

Exports write only :data:`DEFAULT_EXPORT_STATUSES` unless asked otherwise, in
every format: unreviewed predictions never become training labels by accident.

Example:
    >>> from posekit.statuses import DEFAULT_EXPORT_STATUSES, ITEM_STATUSES
    >>> ITEM_STATUSES
    ('new', 'predicted', 'reviewed')
    >>> DEFAULT_EXPORT_STATUSES
    ('accepted',)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DEFAULT_EXPORT_STATUSES",
    "INSTANCE_STATUSES",
    "ITEM_STATUSES",
    "check_instance_statuses",
    "check_item_statuses",
]

#: Review status of an instance (see the module docstring).
INSTANCE_STATUSES: tuple[str, ...] = ("predicted", "accepted", "rejected")

#: Review status of an item (see the module docstring).
ITEM_STATUSES: tuple[str, ...] = ("new", "predicted", "reviewed")

#: Instance statuses every export writes unless the caller asks for others.
DEFAULT_EXPORT_STATUSES: tuple[str, ...] = ("accepted",)


def _check(values: str | Sequence[str], known: tuple[str, ...], what: str) -> list[str]:
    statuses = [values] if isinstance(values, str) else list(values)
    for status in statuses:
        if status not in known:
            raise ValueError(f"{what} status {status!r} is not one of {', '.join(known)}")
    return statuses


def check_instance_statuses(values: str | Sequence[str]) -> list[str]:
    """``values`` as a list, each checked to be one of :data:`INSTANCE_STATUSES`.

    Raises:
        ValueError: An unknown status (the message lists the known ones).
    """
    return _check(values, INSTANCE_STATUSES, "instance")


def check_item_statuses(values: str | Sequence[str]) -> list[str]:
    """``values`` as a list, each checked to be one of :data:`ITEM_STATUSES`.

    Raises:
        ValueError: An unknown status (the message lists the known ones).
    """
    return _check(values, ITEM_STATUSES, "item")
