"""A guarded fast path for the ``<image>`` elements of a CVAT for images document.

Tokenising 100k skeletons in expat calls Python twice per element (1.7M ``<points>``
elements for COCO-17) and builds a dict for each: most of an import. Images tasks
written by posekit are regular (any file in exactly that layout is), so the run of
``<image>`` elements is checked against a strict grammar with regular expressions
(C loops, no Python call per element) and its ``<points>`` are kept as columns:

* The run from the first ``<image`` to the last ``</image>`` must consist only of
  ``<image ATTRS>`` elements holding only ``<skeleton ATTRS>`` elements holding
  only ``<points label="..." outside="0|1" occluded="0|1" points="..."/>``, with
  whitespace between tags. Attribute values hold no ``<``, ``&``, quote or control
  character (so no entity or character references and nothing that XML's
  attribute-value normalisation would change); names are ASCII; no NUL bytes; the
  text is ASCII, or UTF-8 without U+FFFE/U+FFFF under a UTF-8 (or no) encoding
  declaration. Every such run is well-formed XML that expat reads into exactly
  the attributes taken here.
* Everything else (the XML declaration, ``<version>``, ``<meta>``, tracks, the
  closing tag) still goes through :func:`~posekit.formats.cvat_xml._collect`'s
  expat parser with defusedxml's refusals, as the document with the run cut out,
  which must be open at depth 1 (directly in the root) where the run was. A head
  with any ``<!`` (a DOCTYPE, whose ATTLIST defaults would change attributes, or a
  comment) is not taken.

Anything else (other shapes, ``<attribute>`` children, another attribute order,
``true``/``false`` flags, an expat error in the rest) returns None and the caller
parses the whole document as before, so errors and results are those of the full
parser. ``tests/formats/test_cvat_fast.py`` checks that both give the same
records.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from posekit.formats.cvat_xml import _Collector, _expat_parser, _Shape

__all__: list[str] = []

_WS = rb"[ \t\r\n]*"
_VALUE = rb'"[^"<&\x00-\x1f]*"'
_ATTRS = rb"(?:[ \t\r\n]+[A-Za-z_][A-Za-z0-9_.:-]*=" + _VALUE + rb")*"
#: One skeleton node as posekit writes it; its four values are the captures.
#: (The flags are one capture, ``0" occluded="1``: 14 bytes, flags at 0 and 13.)
_POINT = re.compile(
    rb'<points label="([^"<&\x00-\x1f]*)" outside="([01]" occluded="[01])" '
    rb'points="([^"<&\x00-\x1f]*)"' + _WS + rb"(?:/>|>" + _WS + rb"</points>)"
)
_FLAGS_WIDTH = 14
#: The run of images with every run of ``<points>`` (and the whitespace between them)
#: replaced by one NUL byte.
_RESIDUE = re.compile(
    rb"(?:" + _WS + rb"<image" + _ATTRS + _WS + rb">(?:" + _WS + rb"<skeleton" + _ATTRS + _WS
    + rb">" + _WS + rb"(?:\x00" + _WS + rb")?</skeleton>)*" + _WS + rb"</image>)*" + _WS
)  # fmt: skip
_TOKENS = re.compile(rb"<(image|skeleton)(" + _ATTRS + rb")" + _WS + rb">" + _WS + rb"(\x00?)")
_ATTR = re.compile(rb'([A-Za-z_][A-Za-z0-9_.:-]*)="([^"]*)"')
_FIRST_IMAGE = re.compile(rb"<image[ \t\r\n>]")
#: The end of the head: its last ``<`` opens a complete tag followed by whitespace only (so
#: expat stands between tokens there, not inside a tag, a value, a reference or a PI).
_NAME = rb"[A-Za-z_][A-Za-z0-9_.:-]*"
_HEAD_END = re.compile(
    rb"<(?:/" + _NAME + _WS + rb"|" + _NAME + _ATTRS + _WS + rb"/?)>" + _WS + rb"\Z"
)
_ENCODING = re.compile(rb"""<\?xml[^>]*?encoding[ \t\r\n]*=[ \t\r\n]*["']([A-Za-z0-9._-]+)""")


class PointColumns:
    """The ``<points>`` of the fast path, in document order: label, outside and occluded
    flags (one ``0``/``1`` byte each) and the ``points`` text, as bytes."""

    __slots__ = ("labels", "occluded", "outside", "texts")

    def __init__(self, labels: list[bytes], outside: bytes, occluded: bytes, texts: list[bytes]):
        self.labels, self.outside, self.occluded, self.texts = labels, outside, occluded, texts

    def dicts(self, start: int, stop: int) -> list[dict[str, str]]:
        """Points ``start:stop`` as the attribute dicts expat gives."""
        return [
            {
                "label": self.labels[i].decode(),
                "outside": chr(self.outside[i]),
                "occluded": chr(self.occluded[i]),
                "points": self.texts[i].decode(),
            }
            for i in range(start, stop)
        ]


class ColumnSkeleton(_Shape):
    """A ``<skeleton>`` whose points are rows ``start:stop`` of a :class:`PointColumns`
    (``points`` builds the dicts only when asked: error messages, a file without meta)."""

    __slots__ = ("columns", "start", "stop")

    def __init__(self, attrs: dict[str, str], columns: PointColumns, start: int, stop: int):
        self.tag = "skeleton"
        self.attrs = attrs
        self.attributes = []
        self.columns, self.start, self.stop = columns, start, stop

    @property  # type: ignore[override]
    def points(self) -> list[dict[str, str]]:
        return self.columns.dicts(self.start, self.stop)


def _attributes(raw: bytes, encoding: str) -> dict[str, str] | None:
    pairs = _ATTR.findall(raw)
    found = {name.decode("ascii"): value.decode(encoding) for name, value in pairs}
    return found if len(found) == len(pairs) else None  # a repeated name: not well-formed


def fast_collect(data: Any) -> _Collector | None:
    """The document's records as :func:`~posekit.formats.cvat_xml._collect` would give
    them, or None where the fast path does not apply (see the module docstring)."""
    if not isinstance(data, bytes):
        return None
    first = _FIRST_IMAGE.search(data)
    end = data.rfind(b"</image>")
    if first is None or end < first.start():
        return None
    start, end = first.start(), end + len(b"</image>")
    head, run, tail = data[:start], data[start:end], data[end:]
    if b"<!" in head or b"\x00" in run:
        return None
    declaration = head.find(b"<?")
    if declaration not in (-1, 0, 3) or (
        declaration >= 0 and head.find(b"<?", declaration + 2) >= 0
    ):
        return None  # a processing instruction in the head
    last = head.rfind(b"<")
    if last < 0 or _HEAD_END.match(head, last) is None:
        return None
    encoding = "ascii"
    if not run.isascii():
        declared = _ENCODING.match(head)
        if declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8"):
            return None
        try:
            text = run.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if "\ufffe" in text or "\uffff" in text or head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return None
        encoding = "utf-8"
    if b"\x0b" in run or b"\x0c" in run:
        return None  # bytes.isspace() below would take them for XML whitespace
    pieces = _POINT.split(run)
    # between[j] is the text before point j: whitespace inside a skeleton, else tags
    between = pieces[0::4]
    structural = np.flatnonzero(
        ~np.fromiter(map(bytes.isspace, between), dtype=bool, count=len(between))
    ).tolist()
    residue = b"\x00".join([between[j] for j in structural])
    del between
    if _RESIDUE.fullmatch(residue) is None:
        return None
    flags = b"".join(pieces[2::4])
    outside, occluded = flags[0::_FLAGS_WIDTH], flags[_FLAGS_WIDTH - 1 :: _FLAGS_WIDTH]
    columns = PointColumns(pieces[1::4], outside, occluded, pieces[3::4])
    del pieces, flags
    collector = _Collector()
    parser = _expat_parser(collector)
    try:
        parser.Parse(head, False)
        if collector._depth != 1 or collector._builder is not None:
            return None
        images = collector.images
        cache: dict[bytes, dict[str, str] | None] = {}
        run_number = 0  # the NUL bytes of the residue, in order
        row = 0
        shapes: list[_Shape] = []
        for tag, raw, nodes in _TOKENS.findall(residue):
            if tag == b"image":
                attrs = _attributes(raw, encoding)
                if attrs is None:
                    return None
                shapes = []
                images.append((attrs, shapes))
                continue
            attrs = cache.get(raw)
            if attrs is None:
                attrs = cache[raw] = _attributes(raw, encoding)
                if attrs is None:
                    return None
            if nodes:  # points structural[n] .. structural[n + 1] - 1
                start, stop = structural[run_number], structural[run_number + 1]
                run_number += 1
            else:
                start = stop = row
            row = stop
            shapes.append(ColumnSkeleton(attrs, columns, start, stop))
        if run_number != len(structural) - 1:  # pragma: no cover - the grammar ensures it
            return None
        parser.Parse(tail, True)
    except Exception:  # expat errors, defusedxml's refusals: the full parse reports them
        return None
    return collector


def skeleton_columns(
    shapes: list[_Shape],
) -> tuple[list[int], list[bytes], list[bytes], bytes, bytes] | None:
    """``(points per shape, labels, points texts, outside, occluded)`` of skeletons that
    are all :class:`ColumnSkeleton` rows of one :class:`PointColumns`; else None."""
    if not shapes or not all(type(s) is ColumnSkeleton for s in shapes):
        return None
    columns = shapes[0].columns  # type: ignore[attr-defined]
    if any(s.columns is not columns for s in shapes):  # type: ignore[attr-defined]
        return None
    starts = [s.start for s in shapes]  # type: ignore[attr-defined]
    stops = [s.stop for s in shapes]  # type: ignore[attr-defined]
    counts = [b - a for a, b in zip(starts, stops)]
    if starts[0] == 0 and stops[-1] == len(columns.texts) and starts[1:] == stops[:-1]:
        return counts, columns.labels, columns.texts, columns.outside, columns.occluded
    rows = [i for s in shapes for i in range(s.start, s.stop)]  # type: ignore[attr-defined]
    labels, texts = columns.labels, columns.texts
    return (
        counts,
        [labels[i] for i in rows],
        [texts[i] for i in rows],
        bytes(columns.outside[i] for i in rows),
        bytes(columns.occluded[i] for i in rows),
    )
