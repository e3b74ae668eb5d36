"""Threaded, resolvable review comments on items, instances and keypoints (issue 12).

A thread is its first comment (the *root*) and the replies to it; a reply to a
reply joins the root's thread (threads are one level deep, as in a code review).
A root may point at one instance of the item and one keypoint of it, which the
annotation view marks on the canvas. A thread is resolved or reopened as a whole
(on its root); an item's *open comments* are its unresolved threads.

Rejecting an item in review (:meth:`posekit.store.Workspace.decide_review`) opens
a thread in the same transaction; accepting it resolves the item's open threads.

Example:
    >>> thread = ws.add_comment(item.id, reviewer.id, "left wrist is off",  # doctest: +SKIP
    ...                         instance_id=instance.id, keypoint=9)
    >>> ws.add_comment(item.id, annotator.id, "fixed", parent_id=thread.id)  # doctest: +SKIP
    >>> ws.resolve_comment(thread.id, annotator.id)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.orm import aliased

from posekit.store.errors import NotFoundError, StoreError
from posekit.store.tables import CommentRow, InstanceRow, ItemRow, UserRow, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterator

    from posekit.skeleton import Skeleton

__all__ = ["MAX_COMMENT_CHARS", "Comment", "CommentOperations"]

#: Longest comment body, in characters.
MAX_COMMENT_CHARS = 10_000


@dataclass(frozen=True)
class Comment:
    """A comment; a thread root carries its replies (oldest first).

    Attributes:
        instance_id: The instance the thread is about (roots only), or None.
        keypoint: The keypoint index (in the project's template) it is about, or None.
        parent_id: The thread's root (replies only), None for a root.
        author: The author's username (None if the user row is gone).
        resolved_at: When the thread was resolved (naive UTC; on the root), or None.
        resolved_by: Who resolved it (user id), and their username in ``resolved_by_name``.
        replies: The replies of a root, oldest first; empty for a reply.
    """

    id: int
    item_id: int
    instance_id: int | None
    keypoint: int | None
    parent_id: int | None
    author_id: int
    author: str | None
    body: str
    created_at: datetime
    resolved_at: datetime | None = None
    resolved_by: int | None = None
    resolved_by_name: str | None = None
    replies: tuple[Comment, ...] = ()

    @property
    def resolved(self) -> bool:
        """Whether the thread is resolved (meaningful on a root)."""
        return self.resolved_at is not None


def check_comment_body(body: object, where: str = "body") -> str:
    """The stripped body; StoreError naming ``where`` if empty, too long or not text."""
    if not isinstance(body, str) or not body.strip():
        raise StoreError(f"{where}: a comment needs some text")
    body = body.strip()
    if len(body) > MAX_COMMENT_CHARS:
        raise StoreError(f"{where}: {len(body)} characters, at most {MAX_COMMENT_CHARS}")
    return body


def _check_user(conn: Connection, user_id: int, what: str = "user") -> None:
    found = conn.execute(select(UserRow.id).where(UserRow.id == user_id)).first()
    if found is None:
        raise NotFoundError(f"{what} {user_id} does not exist")


def insert_comment(
    conn: Connection,
    template: Skeleton,
    item_id: int,
    author_id: int,
    body: object,
    *,
    instance_id: int | None = None,
    keypoint: int | None = None,
    parent_id: int | None = None,
) -> int:
    """Insert a comment inside the caller's transaction (the item is known to exist);
    returns its id. See :meth:`CommentOperations.add_comment` for the rules."""
    text = check_comment_body(body)
    _check_user(conn, author_id, "author: user")
    if parent_id is not None:
        if instance_id is not None or keypoint is not None:
            raise StoreError(
                "a reply takes the instance and keypoint of its thread; "
                "leave instance_id and keypoint out"
            )
        parent = conn.execute(
            select(CommentRow.item_id, CommentRow.parent_id).where(CommentRow.id == parent_id)
        ).first()
        if parent is None:
            raise NotFoundError(f"parent_id: comment {parent_id} does not exist")
        if parent.item_id != item_id:
            raise StoreError(
                f"parent_id: comment {parent_id} is on item {parent.item_id}, not item {item_id}"
            )
        parent_id = parent.parent_id if parent.parent_id is not None else parent_id
    if keypoint is not None and instance_id is None:
        raise StoreError("keypoint: a comment on a keypoint needs the instance_id it belongs to")
    if instance_id is not None:
        owner = conn.execute(
            select(InstanceRow.item_id).where(InstanceRow.id == instance_id)
        ).scalar_one_or_none()
        if owner is None:
            raise NotFoundError(f"instance_id: instance {instance_id} does not exist")
        if owner != item_id:
            raise StoreError(
                f"instance_id: instance {instance_id} is on item {owner}, not item {item_id}"
            )
    if keypoint is not None:
        count = template.num_keypoints
        if isinstance(keypoint, bool) or not isinstance(keypoint, int) or not 0 <= keypoint < count:
            raise StoreError(
                f"keypoint: {keypoint!r} is not a keypoint index of template "
                f"{template.name!r} (0..{count - 1})"
            )
    result = conn.execute(
        insert(CommentRow).values(
            item_id=item_id,
            instance_id=instance_id,
            keypoint=keypoint,
            parent_id=parent_id,
            author_id=author_id,
            body=text,
            created_at=utcnow(),
        )
    )
    return int(result.inserted_primary_key[0])


def resolve_item_threads(conn: Connection, item_id: int, user_id: int) -> int:
    """Resolve every open thread of an item (inside the caller's transaction)."""
    result = conn.execute(
        update(CommentRow)
        .where(
            CommentRow.item_id == item_id,
            CommentRow.parent_id.is_(None),
            CommentRow.resolved_at.is_(None),
        )
        .values(resolved_at=utcnow(), resolved_by=user_id)
    )
    return int(result.rowcount or 0)


def _comment_query() -> Any:
    author = aliased(UserRow)
    resolver = aliased(UserRow)
    return (
        select(
            CommentRow,
            author.username.label("author"),
            resolver.username.label("resolved_by_name"),
        )
        .outerjoin(author, author.id == CommentRow.author_id)
        .outerjoin(resolver, resolver.id == CommentRow.resolved_by)
        .order_by(CommentRow.created_at, CommentRow.id)
    )


def _comment(row: Any, replies: Sequence[Comment] = ()) -> Comment:
    return Comment(
        id=int(row.id),
        item_id=int(row.item_id),
        instance_id=row.instance_id,
        keypoint=row.keypoint,
        parent_id=row.parent_id,
        author_id=int(row.author_id),
        author=row.author,
        body=row.body,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolved_by_name=row.resolved_by_name,
        replies=tuple(replies),
    )


def _threads(rows: Sequence[Any]) -> list[Comment]:
    replies: dict[int, list[Comment]] = {}
    for row in rows:
        if row.parent_id is not None:
            replies.setdefault(int(row.parent_id), []).append(_comment(row))
    return [_comment(r, replies.get(int(r.id), ())) for r in rows if r.parent_id is None]


class CommentOperations:
    """Mixin of :class:`posekit.store.Workspace`."""

    if TYPE_CHECKING:

        def transaction(self) -> Iterator[Connection]: ...
        def _read(self) -> Iterator[Connection]: ...
        def _template_of_item(self, conn: Connection, item_id: int) -> Skeleton: ...

    def add_comment(
        self,
        item_id: int,
        author_id: int,
        body: str,
        *,
        instance_id: int | None = None,
        keypoint: int | None = None,
        parent_id: int | None = None,
    ) -> Comment:
        """Start a thread on an item (optionally on one instance and keypoint of it),
        or reply to one (``parent_id``; a reply to a reply joins the root's thread).

        Returns:
            The thread the comment is in (its root, with all replies).

        Raises:
            NotFoundError: No such item, author, instance or parent comment.
            StoreError: Empty or too long body; the instance or parent is on another
                item; a keypoint index outside the template, or without an instance;
                a reply naming an instance or keypoint.
        """
        with self.transaction() as conn:
            template = self._template_of_item(conn, item_id)
            comment_id = insert_comment(
                conn,
                template,
                item_id,
                author_id,
                body,
                instance_id=instance_id,
                keypoint=keypoint,
                parent_id=parent_id,
            )
        return self.comment_thread(comment_id)

    def list_comments(self, item_id: int) -> list[Comment]:
        """The threads of an item, oldest first, each with its replies.

        Raises:
            NotFoundError: No such item.
        """
        with self._read() as conn:
            if conn.execute(select(ItemRow.id).where(ItemRow.id == item_id)).first() is None:
                raise NotFoundError(f"item {item_id} does not exist")
            rows = conn.execute(_comment_query().where(CommentRow.item_id == item_id)).all()
        return _threads(rows)

    def comment_thread(self, comment_id: int) -> Comment:
        """The thread a comment belongs to (its root, with the replies).

        Raises:
            NotFoundError: No such comment.
        """
        with self._read() as conn:
            row = conn.execute(
                select(CommentRow.id, CommentRow.parent_id).where(CommentRow.id == comment_id)
            ).first()
            if row is None:
                raise NotFoundError(f"comment {comment_id} does not exist")
            root = row.parent_id if row.parent_id is not None else row.id
            rows = conn.execute(
                _comment_query().where((CommentRow.id == root) | (CommentRow.parent_id == root))
            ).all()
        return _threads(rows)[0]

    def resolve_comment(self, comment_id: int, user_id: int, resolved: bool = True) -> Comment:
        """Resolve (or, ``resolved=False``, reopen) the thread of a comment.

        Returns:
            The thread (its root, with the replies).

        Raises:
            NotFoundError: No such comment or user.
        """
        with self.transaction() as conn:
            row = conn.execute(
                select(CommentRow.id, CommentRow.parent_id).where(CommentRow.id == comment_id)
            ).first()
            if row is None:
                raise NotFoundError(f"comment {comment_id} does not exist")
            _check_user(conn, user_id)
            root = row.parent_id if row.parent_id is not None else row.id
            values: dict[str, Any] = (
                {"resolved_at": utcnow(), "resolved_by": user_id}
                if resolved
                else {"resolved_at": None, "resolved_by": None}
            )
            conn.execute(update(CommentRow).where(CommentRow.id == root).values(**values))
        return self.comment_thread(root)

    def open_comment_counts(self, item_ids: Sequence[int]) -> dict[int, int]:
        """``item id -> number of open (unresolved) threads``, for items that have any."""
        ids = [int(i) for i in item_ids]
        out: dict[int, int] = {}
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                rows = conn.execute(
                    select(CommentRow.item_id, func.count(CommentRow.id))
                    .where(
                        CommentRow.item_id.in_(ids[start : start + 500]),
                        CommentRow.parent_id.is_(None),
                        CommentRow.resolved_at.is_(None),
                    )
                    .group_by(CommentRow.item_id)
                ).all()
                out.update({int(i): int(n) for i, n in rows})
        return out
