"""The CVAT images fast path (posekit.formats.cvat_fast) reads exactly what the full
expat parse reads, and steps aside (full parse, same result or same error) on anything
outside its grammar."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings

from posekit.dataset import PoseDataset
from posekit.formats.cvat import CvatFormatError, to_cvat
from posekit.formats.cvat_fast import ColumnSkeleton, fast_collect
from posekit.formats.cvat_read import _from_cvat
from posekit.formats.cvat_xml import _collect
from posekit.skeleton import get_preset

from .test_cvat import _instance, _same_images, _template, image_datasets


def _records(doc) -> list:
    """The collected images as plain data: attributes, and per shape its tag, attributes
    and points' attribute dicts."""
    return [
        (attrs, [(s.tag, s.attrs, s.points, s.attributes) for s in shapes])
        for attrs, shapes in doc.images
    ]


def _both(xml: bytes, skeleton=None):
    """``(fast result or error text, full result or error text)``."""
    out = []
    for fast in (True, False):
        try:
            out.append(_from_cvat(xml, skeleton, None, "x.xml", fast=fast))
        except CvatFormatError as exc:
            out.append(str(exc))
    return out


def _same(xml: bytes, skeleton=None) -> None:
    fast, full = _both(xml, skeleton)
    if isinstance(full, str):
        assert fast == full
    else:
        assert isinstance(fast, PoseDataset)
        _same_images(full, fast)
        for a, b in zip(full.images, fast.images):
            assert [i.source for i in a.instances] == [i.source for i in b.instances]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_datasets())
def test_fast_path_reads_posekit_files_as_the_full_parser_does(ds: PoseDataset) -> None:
    xml = to_cvat(ds)
    doc = fast_collect(xml)
    if any(item.instances for item in ds.images):
        assert doc is not None  # posekit's own skeleton layout is taken
    if doc is not None:
        assert _records(doc) == _records(_collect(xml, "x"))
        assert doc.root_tag == "annotations"
    _same(xml, ds.skeleton)
    _same(xml)


def _sample() -> bytes:
    skeleton = get_preset("coco17")
    k = skeleton.num_keypoints
    from posekit.dataset import ImageRecord, LabeledImage

    images = [
        LabeledImage(
            ImageRecord(f"im{i}.jpg", 64, 48, id=i),
            [_instance([[i + 1.5, 2.25]] * k, [2, 1, 0] * 5 + [2, 2]) for _ in range(2)],
        )
        for i in range(3)
    ]
    return to_cvat(PoseDataset(skeleton, images))


def test_sample_takes_the_fast_path() -> None:
    doc = fast_collect(_sample())
    assert doc is not None
    assert all(type(s) is ColumnSkeleton for _, shapes in doc.images for s in shapes)
    assert _records(doc) == _records(_collect(_sample(), "x"))


# Each edit makes a document the fast path must not take as it stands: either it steps
# aside (None) or it reads the same; the full parser decides the result or the error.
EDITS = [
    # DTDs: entities (refused), attribute defaults (would change the points)
    (b"<annotations>", b'<!DOCTYPE annotations [<!ENTITY e "x">]><annotations>'),
    (
        b"<annotations>",
        b'<!DOCTYPE annotations [<!ATTLIST points outside CDATA "1">]><annotations>',
    ),
    (
        b"<annotations>",
        b'<!DOCTYPE annotations [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotations>',
    ),
    (b"</meta>", b"</meta><!-- a comment -->"),
    (b"</meta>", b"</meta><?pi a?>"),
    # the images run starting inside a processing instruction, an attribute or a reference
    (b"</meta>\n", b"</meta><?pi "),
    (b"</meta>\n", b'</meta><x a="'),
    (b"</meta>\n", b"</meta>&amp"),
    (b"</annotations>", b'"/></annotations>'),
    # malformed runs
    (b"</skeleton>", b"</skeletons>"),
    (b"</image>", b"</image><image>"),
    (b'outside="0" ', b'outside="0" outside="0" '),
    (b'label="left_eye"', b'label="left_eye" label="x"'),
    (b'name="im1.jpg"', b'name="im1.jpg" name="again"'),
    (b'name="im1.jpg"', b'name="im1.jpg\x01"'),
    (b'name="im1.jpg"', b'name="im1\x00.jpg"'),
    (b'name="im1.jpg"', b'name="im1\x0b.jpg"'),
    # allowed by XML but outside the grammar: the full parser reads them
    (b'name="im1.jpg"', b'name="a&amp;b.jpg"'),
    (b'name="im1.jpg"', b'name="a\tb.jpg"'),
    (b'name="im1.jpg"', b'name="caf\xc3\xa9.jpg"'),  # UTF-8: taken, the same name
    (b'name="im1.jpg"', b'name="bad\xef\xbf\xbf.jpg"'),  # U+FFFF: not XML
    (b'name="im1.jpg"', b'name="bad\xff.jpg"'),  # not UTF-8
    (b'outside="1" occluded="0"', b'outside="true" occluded="0"'),
    (b'outside="0" occluded="0" points="', b'occluded="0" outside="0" points="'),
    (b'<points label="nose"', b'<points  label="nose"'),
    (b"</skeleton>", b'</skeleton><box label="p" xtl="1" ytl="1" xbr="2" ybr="2"/>'),
    (
        b"<points label",
        b'<points label="nose" outside="0" occluded="0" points="1,1">'
        b'<attribute name="a">v</attribute></points><points label',
    ),
    # content errors inside a taken run: the same error, naming the element
    (b'label="left_eye"', b'label="no_such_node"'),
    (b'label="left_eye"', b'label="nose"'),
    (b'points="1.5,2.25"', b'points="1.5,2.25;3,4"'),
    (b'points="1.5,2.25"', b'points="1.5,x"'),
    (b'points="1.5,2.25"', b'points="nan,1"'),
    (b'points="1.5,2.25"', b'points=" 1.5, 2.25"'),
    (b'points="1.5,2.25"', b'points="1e1,2"'),
    (b'<skeleton label="person"', b'<skeleton label="other"'),
]


@pytest.mark.parametrize(("old", "new"), EDITS)
def test_edited_documents_read_or_fail_as_with_the_full_parser(old: bytes, new: bytes) -> None:
    xml = _sample()
    assert old in xml
    edited = xml.replace(old, new, 1)
    _same(edited)
    _same(edited, get_preset("coco17"))


@pytest.mark.parametrize(("old", "new"), EDITS[:8] + EDITS[9:17])
def test_the_fast_path_steps_aside_on_dtds_pis_cut_tokens_and_bad_runs(old, new) -> None:
    assert fast_collect(_sample().replace(old, new, 1)) is None


@pytest.mark.parametrize(("old", "new"), [*EDITS[-8:], EDITS[19]])
def test_content_errors_and_utf8_names_stay_on_the_fast_path(old, new) -> None:
    assert fast_collect(_sample().replace(old, new, 1)) is not None


def test_refused_xml_is_refused_on_the_fast_path_too() -> None:
    xml = _sample().replace(
        b"<annotations>", b'<!DOCTYPE annotations [<!ENTITY e "x">]><annotations>', 1
    )
    assert fast_collect(xml) is None
    with pytest.raises(CvatFormatError, match="entity 'e'"):
        _from_cvat(xml, None, None, "x.xml")


def test_a_skeleton_without_points_and_other_labels_keep_their_places() -> None:
    xml = _sample()
    xml = re.sub(rb"(<skeleton [^>]*>)", rb"\1</skeleton>\1", xml, count=1)
    xml = xml.replace(b'<skeleton label="person"', b'<skeleton label="cat"', 2)
    assert fast_collect(xml) is not None
    _same(xml, get_preset("coco17"))


def test_small_template() -> None:
    ds = PoseDataset(_template(), [])
    _same(to_cvat(ds), ds.skeleton)
