"""The CVAT XML document layer: parsing (defusedxml's protections on a streaming expat
parser), the streamed ``<meta>`` / ``<image>`` / ``<track>`` records, and the values of
shape attributes (``points``, 0/1 flags, ``source``).

See :mod:`posekit.formats.cvat` for the layout and the mapping of CVAT's states.
"""

from __future__ import annotations

import math
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

__all__ = [
    "CVAT_STASH_KEY",
    "VISIBILITY_ATTRIBUTE",
    "CvatFormatError",
    "frame_file_name",
    "parse_cvat_xml",
]

#: ``TrackRecord.extra`` key holding a track's per-point CVAT keyframes, so that an
#: imported track is written back with exactly the same keyframes.
CVAT_STASH_KEY = "cvat"
#: Text attribute of a plain ``<points>`` shape with one visibility (0/1/2) per point.
VISIBILITY_ATTRIBUTE = "posekit_visibility"


class CvatFormatError(ValueError):
    """A CVAT XML file cannot be read or written; the message names the element."""


def frame_file_name(frame: int) -> str:
    """File name of a video frame, as in CVAT's own dataset exports (``frame_000012.png``)."""
    return f"frame_{frame:06d}.png"


def _refused(exc: Exception, source: str) -> CvatFormatError:
    """The error for defusedxml's ``EntitiesForbidden`` / ``ExternalReferenceForbidden``."""
    from defusedxml import EntitiesForbidden

    if isinstance(exc, EntitiesForbidden):
        return CvatFormatError(
            f"{source}: the XML declares entity {exc.name!r}; entity declarations are "
            "refused (CVAT never writes them)"
        )
    sysid, pubid = getattr(exc, "sysid", None), getattr(exc, "pubid", None)
    return CvatFormatError(
        f"{source}: the XML references an external resource ({sysid or pubid!r}); "
        "external references are refused"
    )


def parse_cvat_xml(data: bytes | str, *, source: str = "CVAT XML") -> Element:
    """The root element of a CVAT XML document, parsed with defusedxml.

    Raises:
        CvatFormatError: malformed XML, or XML with entity declarations or
            external references (refused: they are how XML bombs and file
            disclosure attacks work, and CVAT never writes them).
    """
    from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except (EntitiesForbidden, ExternalReferenceForbidden) as exc:
        raise _refused(exc, source) from None
    except DTDForbidden:  # pragma: no cover - forbid_dtd is False
        raise CvatFormatError(f"{source}: the XML has a DTD, which is refused") from None
    except ParseError as exc:
        raise CvatFormatError(f"{source}: malformed XML: {exc}") from None


class _Shape:
    """One shape (``<skeleton>``, ``<points>``, ``<box>``...) of an image or track."""

    __slots__ = ("attributes", "attrs", "points", "tag")

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.points: list[dict[str, str]] = []  # a skeleton's <points> children
        self.attributes: list[list[Any]] = []  # [name, [text parts]] of <attribute>s

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)


class _Collector:
    """Streaming handler: ``<meta>`` as an element tree, images and tracks as plain
    records (an element tree of 100k skeletons costs more than the rest of the import)."""

    def __init__(self) -> None:
        self.root_tag: str | None = None
        self.meta: Element | None = None
        self.images: list[tuple[dict[str, str], list[_Shape]]] = []
        self.tracks: list[tuple[dict[str, str], list[_Shape]]] = []
        self._depth = 0
        self._builder: TreeBuilder | None = None
        self._shapes: list[_Shape] | None = None
        self._shape: _Shape | None = None
        self._text: list[str] | None = None
        self.parser: Any = None  # the expat parser, whose text handler is set only when needed

    def _want_text(self, on: bool) -> None:
        if self.parser is not None:
            self.parser.CharacterDataHandler = self.data if on else None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        depth = self._depth
        self._depth = depth + 1
        if self._builder is not None:
            self._builder.start(tag, attrs)
        elif depth == 0:
            self.root_tag = tag
        elif depth == 1:
            self._shapes = None
            if tag == "image":
                self._shapes = []
                self.images.append((attrs, self._shapes))
            elif tag == "track":
                self._shapes = []
                self.tracks.append((attrs, self._shapes))
            elif tag == "meta" and self.meta is None:
                self._builder = TreeBuilder()
                self._builder.start(tag, attrs)
                self._want_text(True)
        elif self._shapes is None:
            return
        elif depth == 2:
            self._shape = _Shape(tag, attrs)
            self._shapes.append(self._shape)
        elif depth == 3 and self._shape is not None:
            if tag == "points":
                self._shape.points.append(attrs)
            elif tag == "attribute":
                self._text = []
                self._shape.attributes.append([attrs.get("name"), self._text])
                self._want_text(True)

    def end(self, tag: str) -> None:
        self._depth -= 1
        if self._builder is not None:
            self._builder.end(tag)
            if self._depth == 1:
                self.meta = self._builder.close()
                self._builder = None
                self._want_text(False)
        elif self._depth == 3 and self._text is not None:
            self._text = None
            self._want_text(False)

    def data(self, text: str) -> None:
        if self._builder is not None:
            self._builder.data(text)
        elif self._text is not None:
            self._text.append(text)

    def walk(self, element: Element) -> None:
        """Feed an already parsed element tree."""
        self.start(element.tag, dict(element.attrib))
        if element.text:
            self.data(element.text)
        for child in element:
            self.walk(child)
            if child.tail:
                self.data(child.tail)
        self.end(element.tag)


def _expat_parser(collector: _Collector) -> Any:
    """An expat parser feeding ``collector``, with the handlers defusedxml installs (an
    entity declaration or an external entity reference raises defusedxml's own
    ``EntitiesForbidden`` / ``ExternalReferenceForbidden``)."""
    import pyexpat

    from defusedxml import EntitiesForbidden, ExternalReferenceForbidden

    def entity_decl(name, is_parameter_entity, value, base, sysid, pubid, notation_name):
        raise EntitiesForbidden(name, value, base, sysid, pubid, notation_name)

    def unparsed_entity_decl(name, base, sysid, pubid, notation_name):
        raise EntitiesForbidden(name, None, base, sysid, pubid, notation_name)

    def external_entity_ref(context, base, sysid, pubid):
        raise ExternalReferenceForbidden(context, base, sysid, pubid)

    parser = pyexpat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    collector.parser = parser
    parser.EntityDeclHandler = entity_decl
    parser.UnparsedEntityDeclHandler = unparsed_entity_decl
    parser.ExternalEntityRefHandler = external_entity_ref
    return parser


def _collect(data: bytes | str | Element, source: str) -> _Collector:
    """Stream the document through expat (:func:`_expat_parser`: entity declarations
    and external references raise defusedxml's errors, turned into
    :class:`CvatFormatError`); defusedxml's ElementTree parser is pure Python and
    three times slower on 100k-instance files."""
    import pyexpat

    from defusedxml import EntitiesForbidden, ExternalReferenceForbidden

    collector = _Collector()
    if isinstance(data, Element):
        collector.walk(data)
        return collector
    parser = _expat_parser(collector)
    try:
        parser.Parse(data, True)
    except (EntitiesForbidden, ExternalReferenceForbidden) as exc:
        raise _refused(exc, source) from None
    except pyexpat.ExpatError as exc:
        raise CvatFormatError(f"{source}: malformed XML: {exc}") from None
    return collector


# --------------------------------------------------------------- attribute values


def _parse_points(text: str | None, where: str) -> list[tuple[float, float]]:
    if text is None:
        raise CvatFormatError(f"{where}: missing 'points' attribute")
    out = []
    for pair in text.split(";"):
        pair = pair.strip()
        if not pair:
            continue
        parts = pair.split(",")
        if len(parts) != 2:
            raise CvatFormatError(f"{where}: points={text!r}: {pair!r} is not 'x,y'")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise CvatFormatError(
                f"{where}: points={text!r}: {pair!r} is not a number pair"
            ) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise CvatFormatError(f"{where}: points={text!r}: non-finite coordinate")
        out.append((x, y))
    return out


_FLAGS = {"0": False, "1": True, "false": False, "true": True, "False": False, "True": True,
          "": False}  # fmt: skip


def _flag(attrs: dict[str, str], name: str, default: str = "0", tag: str = "points") -> bool:
    value = attrs.get(name, default)
    try:
        return _FLAGS[value]
    except KeyError:
        raise CvatFormatError(f"<{tag}> {name}={value!r}: expected 0 or 1") from None


def _source(attrs: dict[str, str]) -> str:
    value = attrs.get("source", "manual")
    return "manual" if value in ("manual", "") else "model:cvat"
