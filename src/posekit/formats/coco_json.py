"""Reading a COCO file fast: :func:`prepare_coco_file`.

msgspec decodes the file with each annotation's ``keypoints`` left as raw JSON
text, and numpy turns all of those into one integer matrix at once (no Python
int per value), which :func:`posekit.formats.coco_read.prepare_coco` checks as it
checks the usual lists. It applies to the usual COCO file only (annotations with
the standard fields, integer keypoints): any other input is parsed as
:func:`posekit.formats.coco.load_coco_json` parses it, so the result and every
error message are the same either way (tests/formats/test_coco_fast_parse.py).
msgspec is optional here: without it the usual parse runs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from posekit.formats.coco_schema import ANNOTATION_KEYS, TOP_KEYS
from posekit.gc_pause import gc_paused
from posekit.skeleton import Skeleton

if TYPE_CHECKING:
    from posekit.formats.coco_rows import CocoRows

__all__ = ["NotFast", "RawKeypoints", "fast_parse", "long_digit_runs", "prepare_coco_file"]


def prepare_coco_file(
    path: str | os.PathLike[str], skeleton: Skeleton | None = None, *, source: str | None = None
) -> CocoRows:
    """:func:`~posekit.formats.coco_read.prepare_coco` of a COCO file, with a faster
    parse where it applies (see the module).

    The same :class:`CocoRows` (and the same errors) as
    ``prepare_coco(load_coco_json(path), skeleton, source=str(path))``, except that
    the ``keypoints`` of ``anns`` may be left unparsed (``msgspec.Raw``) where ``xy``
    and ``vis`` hold them (see :func:`fast_parse`). Also importable from
    :mod:`posekit.formats.coco_read`.

    Raises:
        CocoFormatError: invalid JSON or COCO content (the message starts with ``source``).
        OSError: the file cannot be read.
    """
    from posekit.formats.coco import load_coco_json  # both import this module
    from posekit.formats.coco_read import _prepare_coco

    path = Path(path)
    source = str(path) if source is None else source
    with gc_paused():
        fast = fast_parse(path.read_bytes())
        if fast is None:
            return _prepare_coco(load_coco_json(path), skeleton, source)
        data, keypoints = fast
        try:
            return _prepare_coco(data, skeleton, source, keypoints)
        except NotFast:
            pass
        del data, keypoints
        return _prepare_coco(load_coco_json(path), skeleton, source)


#: Separates the annotations' keypoints in the text numpy parses: 19 digits, a
#: number no keypoint can hold in a file that has no run of 19 digits (checked).
_SENTINEL = 10**18
#: The bytes of the keypoints texts that an integers-only file may hold.
_INTEGER_TEXT = b"0123456789-,[] \t\n\r"


class NotFast(Exception):
    """The fast parse's result cannot stand for the file's (see :func:`_prepare_coco`)."""


class RawKeypoints:
    """Every annotation's ``keypoints`` as the fast parse left it: raw JSON texts
    (``msgspec.Raw``, or ``msgspec.UNSET`` where absent) and, for a file of flat
    lists of integers of one length (at least 2), ``matrix``: ``(A, L) int64``."""

    def __init__(self, texts: list[Any], matrix: np.ndarray | None) -> None:
        self.texts = texts
        self.matrix = matrix

    def restore(self, anns: list[dict[str, Any]]) -> None:
        """Parse the texts into the annotations: as the whole file parsed by msgspec."""
        import msgspec

        decode = msgspec.json.decode
        for ann, text in zip(anns, self.texts):
            if text is not msgspec.UNSET:
                ann["keypoints"] = decode(text)
        self.matrix = None


def long_digit_runs(raw: bytes) -> bool:
    """Whether ``raw`` has a run of 19 or more ASCII digits.

    msgspec and orjson read an integer beyond 64 bits differently (a Python int,
    a float), and only such integers have 19 digits or more (as has the fast
    parse's separator). A run of 19 holds a whole aligned 8-byte word: the words
    of 8 digits are found at once (each byte ^ '0' below 10), then the digits
    next to each one are counted (up to 11 on either side), all as arrays.
    """
    words = np.frombuffer(raw, dtype="<u8", count=len(raw) // 8)
    x = words ^ np.uint64(0x3030303030303030)
    # A byte b of x is below 10 iff neither b nor b + 0x76 has its high bit set; a
    # byte carries into the next one only if its own high bit is set already.
    high = x + np.uint64(0x7676767676767676)
    high |= x  # (in place: these arrays are as large as the file)
    high &= np.uint64(0x8080808080808080)
    del x
    candidates = np.flatnonzero(high == 0)
    if not candidates.size:
        return False
    data = np.frombuffer(raw, dtype=np.uint8)
    reach = np.arange(1, 12)
    before = 8 * candidates[:, None] - reach  # the 11 bytes before each word, nearest first
    after = 8 * candidates[:, None] + 7 + reach
    # Bytes beyond either end of the file are not digits.
    digit = (data[np.clip(before, 0, data.size - 1)] - 48 < 10) & (before >= 0)
    left = np.cumprod(digit, axis=1).sum(axis=1)
    digit = (data[np.clip(after, 0, data.size - 1)] - 48 < 10) & (after < data.size)
    right = np.cumprod(digit, axis=1).sum(axis=1)
    return bool((left + right >= 11).any())


def fast_parse(raw: bytes) -> tuple[dict[str, Any], RawKeypoints] | None:
    """The parsed file as :func:`~posekit.formats.coco.load_coco_json` would give it,
    except for the annotations' keypoints (see :class:`RawKeypoints`); None where
    this parse does not apply (the caller parses as usual):

    * msgspec is missing, or the file is not valid JSON for it;
    * a top-level key or an annotation's key is not one that COCO defines (msgspec
      would drop it), or ``annotations`` is not a list of objects;
    * the file has a run of 19 digits or more (see :func:`long_digit_runs`).

    Everything but the keypoints is decoded by msgspec as orjson decodes it (the
    same types, the same values, keys in file order). The keypoints become the
    matrix only if they are all flat lists of integers of one length; else they
    are parsed into lists as well.
    """
    try:
        import msgspec
    except ImportError:  # optional speed-up: the usual parse is the same
        return None
    if long_digit_runs(raw):
        return None
    try:
        parsed = _file_decoder().decode(raw)
    except (msgspec.MsgspecError, RecursionError):
        return None
    annotations = parsed.annotations
    data = {
        key: getattr(parsed, key)
        for key in parsed.__struct_fields__
        if getattr(parsed, key) is not msgspec.UNSET
    }
    if annotations is msgspec.UNSET:
        return data, RawKeypoints([], None)
    texts = [ann.keypoints for ann in annotations]
    anns = msgspec.to_builtins(annotations, builtin_types=(msgspec.Raw,))
    data["annotations"] = anns
    keypoints = RawKeypoints(texts, integer_matrix(texts))
    if keypoints.matrix is None:
        keypoints.restore(anns)
    return data, keypoints


def integer_matrix(texts: list[Any]) -> np.ndarray | None:
    """``(A, L) int64`` of keypoints texts that are all flat JSON lists of L >= 2
    integers (of at most 18 digits, see :func:`long_digit_runs`); else None."""
    import msgspec

    n = len(texts)
    if n == 0 or msgspec.UNSET in texts:
        return None
    separator = b",%d," % _SENTINEL
    joined = separator.join(texts) + separator[:-1]
    if joined.translate(None, _INTEGER_TEXT):
        return None  # floats, null, strings, objects: parsed as lists
    # Each text is valid JSON; with L >= 2 values none is a bare number, so each
    # starts with "[": n of them in all means none is nested.
    if joined.count(b"[") != n or joined.count(b"]") != n:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(joined.translate(None, b"[]"), dtype=np.int64, sep=",")
        except (ValueError, DeprecationWarning):  # "[]": an empty field
            return None
    ends = np.flatnonzero(values == _SENTINEL)
    if ends.size != n:
        return None
    width = int(ends[0])
    if width < 2 or values.size != n * (width + 1):
        return None
    table = values.reshape(n, width + 1)
    if not (table[:, width] == _SENTINEL).all():
        return None  # rows of different lengths
    return table[:, :width]  # a view: rows of width values, the sentinels skipped


def _file_decoder() -> Any:
    """The msgspec decoder of a COCO file (see :func:`fast_parse`), made once."""
    global _DECODER
    if _DECODER is None:
        import msgspec
        from msgspec import UNSET, Raw, UnsetType

        # Made with defstruct: this module's annotations are strings (postponed),
        # which msgspec cannot resolve for classes defined in a function.
        keys = ["id", "image_id", "category_id", "keypoints", *sorted(ANNOTATION_KEYS - {
            "id", "image_id", "category_id", "keypoints"})]  # fmt: skip
        annotation = msgspec.defstruct(
            "_CocoAnnotation",
            [(key, Raw | UnsetType if key == "keypoints" else Any, UNSET) for key in keys],
            forbid_unknown_fields=True,
        )
        fields = [
            (key, list[annotation] | UnsetType if key == "annotations" else Any, UNSET)  # type: ignore[valid-type]
            for key in ("info", "licenses", "images", "annotations", "categories")
        ]
        _File = msgspec.defstruct("_CocoFile", fields, forbid_unknown_fields=True)
        if set(_File.__struct_fields__) != TOP_KEYS:
            raise RuntimeError("posekit: the COCO top-level keys changed")  # pragma: no cover
        _DECODER = msgspec.json.Decoder(_File)
    return _DECODER


_DECODER: Any = None
