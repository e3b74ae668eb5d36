"""Which item of the dataset an image of an imported file is, and whether the file's
annotations attach to it (:func:`posekit.store.imports.import_dataset`).

An entry of the file (its image ``file_name``) is the dataset's item:

1. of the same stored name;
2. else, when the image file is there (uploaded with the file, or under
   ``image_root``), of the same content;
3. else, when the image file is *not* there, of the same base name (the names
   differ only by folder: ``upload/18/photo.jpg`` or ``images/train/photo.jpg``
   for ``photo.jpg``; Label Studio's upload names ``<8 hex>-photo.jpg`` also
   match ``photo.jpg``), case-sensitive, when that is unambiguous: one item of
   the dataset has that base name, no other entry of the file maps to it (by its
   exact name or its base name), and its size is the size the file declares.
   Other entries with a base-name candidate are not guessed: they are skipped
   (``report.skipped``), the reason naming the candidates.

The bulk COCO path (:mod:`posekit.store.bulk_coco`) only imports into an empty
dataset, where there is nothing to match.

Example:
    >>> item = ExistingItem(1, "photo.jpg", None, 640, 480, False)
    >>> matcher = ItemMatcher({"photo.jpg": item}, Path("labels.json"), "attach")
    >>> matcher.plan([("upload/18/3f2a9c1b-photo.jpg", False, (640, 480))])
    >>> matcher.matched
    [('upload/18/3f2a9c1b-photo.jpg', 'photo.jpg')]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select

from posekit.store.errors import StoreError
from posekit.store.import_report import ImportReport
from posekit.store.media_names import base_name_candidates
from posekit.store.media_staging import file_sha256
from posekit.store.tables import InstanceRow, ItemRow
from posekit.store.workspace import Workspace

__all__ = ["ExistingItem", "ItemMatcher", "existing_items"]


@dataclass(frozen=True)
class ExistingItem:
    """An item of the dataset imported into, as the matching needs it."""

    id: int
    file_name: str
    sha256: str | None
    width: int
    height: int
    has_ground_truth: bool  # an instance a person settled (accepted / rejected)


def existing_items(ws: Workspace, dataset_id: int) -> dict[str, ExistingItem]:
    """The dataset's items by file name, with whether they hold ground truth."""
    settled = (
        select(InstanceRow.item_id)
        .where(InstanceRow.item_id == ItemRow.id, InstanceRow.status != "predicted")
        .exists()
    )
    with ws.engine.connect() as conn:
        rows = conn.execute(
            select(
                ItemRow.id, ItemRow.file_name, ItemRow.sha256, ItemRow.width, ItemRow.height,
                settled.label("settled"),
            ).where(ItemRow.dataset_id == dataset_id)
        ).all()  # fmt: skip
    return {
        r.file_name: ExistingItem(r.id, r.file_name, r.sha256, r.width, r.height, bool(r.settled))
        for r in rows
    }


def _quoted(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class ItemMatcher:
    """Matches the entries of one imported file to the dataset's items (see the module
    docstring) and collects the annotations to attach to them.

    Call :meth:`plan` once with every entry, then :meth:`take` per entry in order.

    Attributes:
        attach_ids: Items that get annotations, in order.
        attach_instances: The instances each of them gets.
        matched: ``(entry, item file name)`` of the entries matched by base name.
    """

    def __init__(
        self,
        items: dict[str, ExistingItem],
        file: Path,
        existing: Literal["attach", "skip"],
    ) -> None:
        self.items, self.file, self.existing = items, file, existing
        self.by_sha = {e.sha256: e for e in items.values() if e.sha256}
        self.claimed: set[int] = set()
        self.attach_ids: list[int] = []
        self.attach_instances: list[Any] = []
        self.matched: list[tuple[str, str]] = []
        self._by_base: dict[str, ExistingItem] = {}
        self._not_matched: dict[str, str] = {}

    def plan(self, entries: Iterable[tuple[str, bool, tuple[int, int]]]) -> None:
        """Decide the base-name matches from every entry's ``(stored name, image file
        there, declared (width, height))``: only entries whose image file is not there
        and whose name is not in the dataset are matched by base name."""
        entries = list(entries)
        if not self.items:
            return
        exact = {name for name, _, _ in entries if name in self.items}
        unmatched = [(n, size) for n, present, size in entries if not present and n not in exact]
        if not unmatched:
            return
        by_base: dict[str, list[str]] = {}
        for file_name in self.items:
            by_base.setdefault(file_name.rpartition("/")[2], []).append(file_name)
        wanted: dict[str, list[str]] = {}  # item file name -> entries mapping to it
        for name, declared in unmatched:
            found = base_name_candidates(name, by_base)
            if not found:
                continue
            if len(found) > 1:
                self._not_matched[name] = (
                    f"not matched: {len(found)} images in the dataset have its base name "
                    f"({_quoted(sorted(found))}); name one of them in the file"
                )
                continue
            item = self.items[found[0]]
            if found[0] in exact:
                self._not_matched[name] = (
                    f"not matched to {found[0]!r} by base name: another entry of the file "
                    "names that image exactly"
                )
            elif (item.width, item.height) != declared:
                self._not_matched[name] = (
                    f"not matched to {found[0]!r} by base name: the file says "
                    f"{declared[0]}x{declared[1]} pixels, that image is "
                    f"{item.width}x{item.height}"
                )
            else:
                wanted.setdefault(found[0], []).append(name)
        for file_name, names in wanted.items():
            if len(names) == 1:
                self._by_base[names[0]] = self.items[file_name]
                self.matched.append((names[0], file_name))
                continue
            for name in names:
                others = [n for n in names if n != name]
                self._not_matched[name] = (
                    f"not matched to {file_name!r} by base name: entry "
                    f"{_quoted(others)} of the file has that base name too"
                )

    def take(
        self,
        name: str,
        stored_name: str,
        where: str,
        declared: tuple[int, int],
        source: Path | None,
        instances: list[Any],
        report: ImportReport,
    ) -> bool:
        """Whether the entry is an image already in the dataset: then its annotations are
        attached (collected here) or it is skipped (``report.skipped`` says why);
        False: it is a new image.

        Args:
            name: The entry's name in the file.
            stored_name: The name it would be stored under.
            where: The entry, as error messages name it.
            declared: Its ``(width, height)`` in the file.
            source: Its image file when it is there (checked to be of ``declared`` size).
            instances: Its annotations.
            report: Skipped entries are listed in it.

        Raises:
            StoreError: the file declares another size than the item's, for an item of
                the same name or content.
        """
        if stored_name in self._not_matched:
            report.skipped.append((name, self._not_matched[stored_name]))
            return True
        target = self.items.get(stored_name)
        if target is None and source is not None and self.by_sha:
            target = self.by_sha.get(file_sha256(source))
        by_base = target is None and stored_name in self._by_base
        if by_base:
            target = self._by_base[stored_name]
        if target is None:
            return False
        size = (target.width, target.height)
        if size != declared:  # never for a base-name match (see plan)
            raise StoreError(
                f"{self.file}: {where}: the file says {declared[0]}x{declared[1]} "
                f"pixels but {target.file_name!r} in the dataset is {size[0]}x{size[1]}"
            )
        shown = f"{target.file_name!r} (same base name)" if by_base else repr(target.file_name)
        if self.existing == "skip":
            reason = f"{shown} is already in the dataset (kept as it is)"
        elif target.id in self.claimed:
            reason = f"same image as {shown}, annotations already attached"
        elif target.has_ground_truth:
            reason = f"{shown} is already in the dataset with annotations"
        elif not instances:
            reason = f"{shown} is already in the dataset"
        else:
            self.claimed.add(target.id)
            self.attach_ids.append(target.id)
            self.attach_instances.append(instances)
            return True
        report.skipped.append((name, reason))
        return True
