"""CVAT for images / for video 1.1 XML (posekit.formats.cvat)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.cvat import (
    CVAT_STASH_KEY,
    CvatFormatError,
    from_cvat,
    parse_cvat_xml,
    read_cvat,
    to_cvat,
    write_cvat,
)
from posekit.formats.registry import get_format
from posekit.skeleton import Skeleton, get_preset

FIXTURES = Path(__file__).parent / "fixtures"
PEER_DATUMARO = FIXTURES / "peer_datumaro_cvat.py"
# A Python with Datumaro (it needs numpy 2, so it lives in its own venv; see pyproject's
# formats-check extra): POSEKIT_DATUMARO_PYTHON or /tmp/venv-dm/bin/python.
DATUMARO_PYTHON = Path(os.environ.get("POSEKIT_DATUMARO_PYTHON", "/tmp/venv-dm/bin/python"))


def _template(names=("head", "body", "tail"), edges=(("head", "body"),)) -> Skeleton:
    return Skeleton.from_dict(
        {"name": "tiny", "category": "animal", "keypoints": list(names),
         "edges": [list(e) for e in edges], "default_sigma": 0.05}
    )  # fmt: skip


def _instance(xy, vis, **kw) -> Instance:
    return Instance(np.asarray(xy, np.float32), np.asarray(vis, np.uint8), **kw)


# ------------------------------------------------------------------ real files


def test_real_cvat_for_images_plain_points(shared_data: Path) -> None:
    ds = read_cvat(shared_data / "formats" / "cvat" / "images_points.xml")
    assert [item.image.file_name for item in ds.images] == ["img0.jpg", "img1.jpg"]
    assert [(i.image.width, i.image.height, i.image.id) for i in ds.images] == [
        (8, 8, 0), (10, 10, 1)
    ]  # fmt: skip
    assert ds.images[0].instances == []  # box, polyline and polygon are not keypoints
    (inst,) = ds.images[1].instances
    assert inst.keypoints.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert inst.visibility.tolist() == [2, 2, 2]
    assert ds.skeleton.num_keypoints == 3 and ds.skeleton.category == "label2"


def test_real_cvat_for_video_points_track(shared_data: Path) -> None:
    ds = read_cvat(shared_data / "formats" / "cvat" / "video_points_track.xml")
    (video,) = ds.videos
    assert (video.name, video.file_name, video.width, video.height) == ("v1", "t.mp4", 25, 20)
    # start_frame 10, frame_filter step=3, size 4: frames 10, 13, 16, 19
    assert video.extra["cvat"] == {"start_frame": 10, "step": 3, "size": 4}
    # the points track is keyframed at 10 and outside from 13: one frame
    assert [(i.image.file_name, i.image.frame_index) for i in ds.images] == [
        ("frame_000010.png", 10)
    ]
    (inst,) = ds.images[0].instances
    np.testing.assert_array_equal(
        inst.keypoints, np.float32([[21.95, 8.0], [2.55, 15.09], [2.23, 3.16]])
    )
    assert inst.track_id == 1
    (track,) = ds.tracks
    assert (track.track_id, track.keyframes, track.outside) == (1, {10}, {13})
    # written back and read again: the same frames, points and grid
    again = from_cvat(to_cvat(ds), ds.skeleton)
    assert again.videos[0].extra == video.extra
    assert [i.image.frame_index for i in again.images] == [10]
    assert again.images[0].instances[0] == inst
    assert (again.tracks[0].keyframes, again.tracks[0].outside) == ({10}, {13})


# ------------------------------------------------------------ skeleton layout


def test_skeleton_images_fixture() -> None:
    ds = read_cvat(FIXTURES / "cvat_skeleton_images.xml")
    assert ds.skeleton.keypoints == ("head", "body", "tail")
    assert ds.skeleton.edges == (("body", "tail"), ("head", "body"))
    assert ds.skeleton.category == "s1"
    first, second = ds.images[0].instances
    assert first.visibility.tolist() == [2, 1, 0]  # tail is outside, body occluded
    np.testing.assert_array_equal(first.keypoints, np.float32([[54.47, 94.81], [68.02, 162.34],
                                                               [0, 0]]))  # fmt: skip
    assert first.source == "manual"
    # points are matched by sublabel name, not by order
    np.testing.assert_array_equal(second.keypoints, np.float32([[310.25, 420], [320, 440],
                                                                [300, 400.5]]))  # fmt: skip
    assert second.source == "model:cvat"
    assert ds.images[1].image.file_name == "sub/filename001.jpg"
    assert ds.images[1].instances == []


def test_skeleton_images_read_into_a_given_template_by_name() -> None:
    template = _template(("tail", "head", "body", "ear"))
    ds = read_cvat(FIXTURES / "cvat_skeleton_images.xml", template)
    first = ds.images[0].instances[0]
    assert first.visibility.tolist() == [0, 2, 1, 0]  # the template's ear is not in the file
    assert first.keypoints[1].tolist() == pytest.approx([54.47, 94.81])


def test_skeleton_video_fixture_follows_cvat_rule() -> None:
    ds = read_cvat(FIXTURES / "cvat_skeleton_video.xml")
    assert [i.image.frame_index for i in ds.images] == list(range(20))  # runs to the end
    by_frame = {i.image.frame_index: i.instances[0] for i in ds.images}
    head = {f: (inst.keypoints[0].tolist(), int(inst.visibility[0])) for f, inst in
            by_frame.items()}  # fmt: skip
    body = {f: (inst.keypoints[1].tolist(), int(inst.visibility[1])) for f, inst in
            by_frame.items()}  # fmt: skip
    assert head[2] == ([120, 180], 2)  # linear between the head's keyframes 0 and 4
    assert head[6] == ([140, 160], 2)  # towards the outside keyframe's position (the same)
    assert head[9] == ([0, 0], 0)  # nothing after outside
    assert head[15] == ([0, 0], 2)  # the last keyframe held to the end of the task
    # body's frame-4 shape has keyframe="0": it is ignored, body moves 0 -> 8
    assert body[4] == ([30, 40], 1)  # occluded from the previous keyframe
    assert body[10] == ([70, 80], 2)  # moves towards its outside keyframe at 12
    assert body[12] == ([0, 0], 0)
    (track,) = ds.tracks
    assert track.track_id == 3 and track.keyframes == {0, 4, 8, 12} and track.outside == set()
    assert ds.videos[0].frame_count == 20 and ds.videos[0].file_name == "clip.mp4"
    # export: the same per-point keyframes
    out = parse_cvat_xml(to_cvat(ds))
    keys = {
        (int(s.get("frame")), p.get("label"), p.get("points"), p.get("outside"))
        for s in out.iter("skeleton")
        for p in s.findall("points")
        if p.get("keyframe") == "1"
    }
    assert keys == {
        (0, "head", "100,200", "0"), (4, "head", "140,160", "0"), (8, "head", "140,160", "1"),
        (12, "head", "0,0", "0"), (0, "body", "10,20", "0"), (8, "body", "50,60", "0"),
        (12, "body", "90,100", "1"),
    }  # fmt: skip


def test_project_and_job_wrappers() -> None:
    svg = (
        '&lt;circle data-node-id="1" data-label-name="a"&gt;&lt;/circle&gt;'
        '&lt;circle data-node-id="2" data-label-name="b"&gt;&lt;/circle&gt;'
    )
    labels = (
        f"<labels><label><name>p</name><type>skeleton</type><svg>{svg}</svg></label>"
        "<label><name>a</name><parent>p</parent></label>"
        "<label><name>b</name><parent>p</parent></label></labels>"
    )
    body = (
        '<image id="0" name="x.png" width="4" height="4"><skeleton label="p">'
        '<points label="b" outside="0" occluded="0" points="1,1"/>'
        '<points label="a" outside="0" occluded="0" points="2,2"/></skeleton></image>'
    )
    for meta in (
        f"<project><name>pr</name>{labels}<tasks><task><size>1</size></task></tasks></project>",
        f"<job><size>1</size>{labels}</job>",
    ):
        ds = from_cvat(f"<annotations><meta>{meta}</meta>{body}</annotations>")
        assert ds.skeleton.keypoints == ("a", "b")
        assert ds.images[0].instances[0].keypoints.tolist() == [[2, 2], [1, 1]]


# ------------------------------------------------------------------ bad input


BAD = [
    ("<annotations><image", "malformed XML"),
    (
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        "<annotations>&lol2;</annotations>",
        "entity 'lol'",
    ),
    (
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<annotations>&x;</annotations>",
        "entity 'x'",
    ),
    ("<dataset/>", "expected <annotations>"),
]


@pytest.mark.parametrize(("xml", "message"), BAD)
def test_bad_xml_is_refused_with_a_clear_error(xml: str, message: str) -> None:
    with pytest.raises(CvatFormatError, match=message):
        from_cvat(xml.encode())


def test_unknown_node_is_an_error_naming_the_element() -> None:
    text = (FIXTURES / "cvat_skeleton_images.xml").read_text()
    text = text.replace('<points label="tail" occluded="0" source="auto"',
                        '<points label="wing" occluded="0" source="auto"')  # fmt: skip
    with pytest.raises(CvatFormatError, match=r"<points label='wing'> is not a node of skeleton"):
        from_cvat(text)


def test_node_not_in_given_template_is_an_error() -> None:
    with pytest.raises(CvatFormatError, match=r"'tail'.*template"):
        read_cvat(FIXTURES / "cvat_skeleton_images.xml", _template(("head", "body")))


def test_points_count_mismatch_is_an_error(shared_data: Path) -> None:
    with pytest.raises(CvatFormatError, match="points count mismatch"):
        read_cvat(shared_data / "formats" / "cvat" / "images_points.xml", get_preset("coco17"))
    text = (FIXTURES / "cvat_skeleton_images.xml").read_text()
    text = text.replace('points="54.47,94.81"', 'points="54.47,94.81;1,2"')
    with pytest.raises(CvatFormatError, match=r"has 2 points.*points count mismatch"):
        from_cvat(text)


def test_bad_numbers_and_frames_are_errors() -> None:
    text = (FIXTURES / "cvat_skeleton_video.xml").read_text()
    with pytest.raises(CvatFormatError, match="not a number pair"):
        from_cvat(text.replace('points="100,200"', 'points="1oo,200"'))
    with pytest.raises(CvatFormatError, match="frame 25 is not a frame of the task"):
        from_cvat(text.replace('<skeleton frame="12"', '<skeleton frame="25"'))


def test_write_errors_leave_no_file(tmp_path: Path) -> None:
    skeleton = _template()
    ds = PoseDataset(
        skeleton,
        [LabeledImage(ImageRecord("a.png", 4, 4), []),
         LabeledImage(ImageRecord("f.png", 4, 4, video="v", frame_index=0), [])],
    )  # fmt: skip
    target = tmp_path / "out.xml"
    with pytest.raises(CvatFormatError, match="not a video frame"):
        write_cvat(ds, target, mode="video")
    assert not target.exists() and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ round trips

coord = st.floats(0, 4000, allow_nan=False, width=32)


@st.composite
def image_datasets(draw) -> PoseDataset:
    skeleton = draw(st.sampled_from([_template(), get_preset("coco17")]))
    k = skeleton.num_keypoints
    images = []
    for i in range(draw(st.integers(0, 4))):
        instances = []
        for _ in range(draw(st.integers(0, 3))):
            vis = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=k, max_size=k))
            xy = draw(st.lists(st.tuples(coord, coord), min_size=k, max_size=k))
            source = draw(st.sampled_from(["manual", "model:cvat"]))
            instances.append(_instance(xy, vis, source=source))
        images.append(LabeledImage(ImageRecord(f"d/im{i}.jpg", 640, 480, id=i), instances))
    return PoseDataset(skeleton, images)


def _same_images(a: PoseDataset, b: PoseDataset) -> None:
    assert b.skeleton.keypoints == a.skeleton.keypoints
    assert [(i.image.file_name, i.image.width, i.image.height, i.image.id) for i in b.images] == [
        (i.image.file_name, i.image.width, i.image.height, i.image.id) for i in a.images
    ]
    for x, y in zip(a.images, b.images):
        assert x.instances == y.instances


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_datasets(), st.sampled_from(["skeleton", "points"]))
def test_images_round_trip_is_lossless(ds: PoseDataset, layout: str) -> None:
    again = from_cvat(to_cvat(ds, layout=layout), ds.skeleton)
    _same_images(ds, again)


@st.composite
def video_datasets(draw) -> PoseDataset:
    skeleton = _template()
    k = skeleton.num_keypoints
    n = draw(st.integers(2, 30))
    by_frame: dict[int, list[Instance]] = {}
    tracks = []
    for track_id in range(draw(st.integers(1, 3))):
        present = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        frames = [f for f in range(n) if present[f]]
        if not frames:
            continue
        for f in frames:
            vis = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=k, max_size=k))
            vis[draw(st.integers(0, k - 1))] = 2  # at least one point to show
            xy = draw(st.lists(st.tuples(coord, coord), min_size=k, max_size=k))
            by_frame.setdefault(f, []).append(_instance(xy, vis, track_id=track_id))
        keyframes = set(draw(st.lists(st.sampled_from(frames), max_size=len(frames))))
        tracks.append(TrackRecord("clip", track_id, keyframes=keyframes))
    images = [
        LabeledImage(ImageRecord(f"frame_{f:06d}.png", 64, 48, video="clip", frame_index=f),
                     by_frame[f])
        for f in sorted(by_frame)
    ]  # fmt: skip
    video = VideoRecord("clip", 64, 48, frame_count=n)
    return PoseDataset(skeleton, images, videos=[video], tracks=tracks)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(video_datasets())
def test_video_round_trip_keeps_frames_tracks_and_keyframes(ds: PoseDataset) -> None:
    again = from_cvat(to_cvat(ds), ds.skeleton)
    assert [(v.name, v.width, v.height, v.frame_count) for v in again.videos] == [
        (v.name, v.width, v.height, v.frame_count) for v in ds.videos
    ]
    assert [i.image.frame_index for i in again.images] == [i.image.frame_index for i in ds.images]
    before = {(i.image.frame_index, x.track_id): x for i in ds.images for x in i.instances}
    after = {(i.image.frame_index, x.track_id): x for i in again.images for x in i.instances}
    assert before.keys() == after.keys()
    records = {t.track_id: t for t in ds.tracks}
    for (frame, track_id), inst in before.items():
        got = after[(frame, track_id)]
        np.testing.assert_array_equal(got.visibility, inst.visibility)
        # keyframes exactly; other frames are CVAT's interpolation of them (within 0.001 px
        # of the instance, else they are written as keyframes as well)
        if frame in records[track_id].keyframes:
            np.testing.assert_array_equal(got.keypoints, inst.keypoints)
        else:
            np.testing.assert_allclose(got.keypoints, inst.keypoints, rtol=0, atol=2e-3)
    for track in again.tracks:
        assert records[track.track_id].keyframes <= track.keyframes
    # imported -> exported -> imported again: identical, with the same keyframes
    third = from_cvat(to_cvat(again), ds.skeleton)
    assert [x.instances for x in third.images] == [x.instances for x in again.images]
    assert [(t.track_id, t.keyframes, t.outside, t.extra) for t in third.tracks] == [
        (t.track_id, t.keyframes, t.outside, t.extra) for t in again.tracks
    ]


def test_held_points_and_gaps_match_posekit_interpolation() -> None:
    from posekit.tracking.interpolation import interpolate_track

    skeleton = _template()
    keyframes = {
        0: _instance([[0, 0], [10, 10], [5, 5]], [2, 2, 0], track_id=1),
        10: _instance([[100, 50], [0, 0], [7, 7]], [1, 0, 2], track_id=1),
        20: _instance([[3, 4], [5, 6], [7, 8]], [2, 2, 2], track_id=1),
    }
    computed = list(interpolate_track(keyframes, frame_count=30, outside={15}).values())
    images = [
        LabeledImage(ImageRecord(f"f{t.frame_index}", 64, 48, video="v",
                                 frame_index=t.frame_index), [t.instance])
        for t in computed
    ]  # fmt: skip
    ds = PoseDataset(
        skeleton, images, videos=[VideoRecord("v", 64, 48, frame_count=30)],
        tracks=[TrackRecord("v", 1, keyframes=set(keyframes), outside={15})],
    )  # fmt: skip
    again = from_cvat(to_cvat(ds), skeleton)
    (track,) = again.tracks
    assert track.keyframes == {0, 10, 20} and track.outside == {15}
    got = {i.image.frame_index: i.instances[0] for i in again.images}
    assert set(got) == {t.frame_index for t in computed}
    for t in computed:
        np.testing.assert_array_equal(got[t.frame_index].visibility, t.instance.visibility)
        np.testing.assert_allclose(got[t.frame_index].keypoints, t.instance.keypoints, atol=1e-3)


# ------------------------------------------------- the 2,400-frame video check

COCO17 = get_preset("coco17").keypoints


def _cvat_reference(keys: list[tuple[int, float, float, int, int]], n: int):
    """CVAT's rule for one point, written out frame by frame (independent of the module):
    absent before the first keyframe and after an outside keyframe up to the next one; at
    a keyframe its value; between a not-outside keyframe a and the next keyframe b,
    p_a + (p_b - p_a) * ((f - a) / (b - a)) in float64 (also when b is outside),
    occluded from a; after the last keyframe (not outside) held to the task's end."""
    out = []
    for f in range(n):
        prev = [k for k in keys if k[0] <= f]
        if not prev or prev[-1][3]:
            out.append(None)
            continue
        a = prev[-1]
        later = [k for k in keys if k[0] > f]
        if a[0] == f or not later:
            x, y = a[1], a[2]
        else:
            b = later[0]
            t = (f - a[0]) / (b[0] - a[0])
            x, y = a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t
        out.append((np.float32(x), np.float32(y), 1 if a[4] else 2))
    return out


def _long_track_xml(rng: np.random.Generator, n: int = 2400):
    keys: dict[str, list[tuple[int, float, float, int, int]]] = {}
    for name in COCO17:
        frames = sorted(rng.choice(np.arange(1, n), size=int(rng.integers(10, 25)),
                                   replace=False).tolist())  # fmt: skip
        rows = [(0, *np.round(rng.uniform(0, 1900, 2), 2).tolist(), 0, 0)]
        for f in frames:
            outside = int(rng.random() < 0.15)
            occluded = int(rng.random() < 0.2)
            rows.append((f, *np.round(rng.uniform(0, 1900, 2), 2).tolist(), outside, occluded))
        keys[name] = rows
    key_frames = sorted({r[0] for rows in keys.values() for r in rows})
    sub = "".join(f"<label><name>{n_}</name><type>points</type><parent>person</parent></label>"
                  for n_ in COCO17)  # fmt: skip
    parts = [
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task>'
        f"<size>{n}</size><mode>interpolation</mode><start_frame>0</start_frame>"
        f"<stop_frame>{n - 1}</stop_frame><labels><label><name>person</name>"
        f"<type>skeleton</type></label>{sub}</labels><original_size><width>1920</width>"
        "<height>1080</height></original_size></task></meta>"
        '<track id="0" label="person" source="manual">'
    ]
    for f in key_frames:
        parts.append(f'<skeleton frame="{f}" keyframe="1" z_order="0">')
        for name in COCO17:
            row = next((r for r in keys[name] if r[0] == f), None)
            if row is None:  # not a keyframe of this point: CVAT writes some value
                parts.append(f'<points label="{name}" outside="0" occluded="0" keyframe="0" '
                             'points="-1,-1"></points>')  # fmt: skip
            else:
                parts.append(
                    f'<points label="{name}" outside="{row[3]}" occluded="{row[4]}" '
                    f'keyframe="1" points="{row[1]},{row[2]}"></points>'
                )
        parts.append("</skeleton>")
    parts.append("</track></annotations>")
    return "".join(parts).encode(), keys


def _keys_of(xml: bytes) -> dict[str, list[tuple[int, float, float, int, int]]]:
    root = parse_cvat_xml(xml)
    out: dict[str, list[tuple[int, float, float, int, int]]] = {n: [] for n in COCO17}
    for shape in root.iter("skeleton"):
        for p in shape.findall("points"):
            if p.get("keyframe") == "1":
                x, y = (float(v) for v in p.get("points").split(","))
                out[p.get("label")].append(
                    (int(shape.get("frame")), x, y, int(p.get("outside")), int(p.get("occluded")))
                )
    return {n: sorted(v) for n, v in out.items()}


def test_2400_frame_skeleton_track_matches_cvat_interpolation_and_keeps_keyframes() -> None:
    rng = np.random.default_rng(7)
    n = 2400
    xml, keys = _long_track_xml(rng, n)
    assert 200 <= sum(len(v) for v in keys.values()) <= 500  # a few hundred per-point keys
    ds = from_cvat(xml, get_preset("coco17"))
    got = {item.image.frame_index: item.instances[0] for item in ds.images}
    reference = {name: _cvat_reference(keys[name], n) for name in COCO17}
    expected_frames = {f for f in range(n) if any(reference[m][f] for m in COCO17)}
    assert set(got) == expected_frames
    assert max(got) == n - 1  # points not closed by outside run to the end of the task
    for f in range(n):
        for s, name in enumerate(COCO17):
            ref = reference[name][f]
            if f not in got:
                assert ref is None
                continue
            inst = got[f]
            if ref is None:
                assert inst.visibility[s] == 0
            else:
                assert inst.visibility[s] == ref[2], (f, name)
                assert inst.keypoints[s, 0] == ref[0] and inst.keypoints[s, 1] == ref[1], (f, name)
    assert ds.tracks[0].keyframes == {r[0] for v in keys.values() for r in v} & set(got)
    assert keys == _keys_of(to_cvat(ds))  # exported with the same per-point keyframes
    assert CVAT_STASH_KEY in ds.tracks[0].extra


# ---------------------------------------------------------------- registry, files


def test_registry_entry(tmp_path: Path) -> None:
    spec = get_format("cvat")
    assert spec.kind == "file" and spec.extensions == (".xml",)
    assert not spec.capabilities.boxes and not spec.capabilities.scores
    assert spec.capabilities.tracks and spec.capabilities.video
    ds = read_cvat(FIXTURES / "cvat_skeleton_images.xml")
    path = spec.write(ds, tmp_path / "annotations.xml", media=None)
    assert path == tmp_path / "annotations.xml"
    again = spec.read(tmp_path, ds.skeleton)  # a folder: its annotations.xml
    _same_images(ds, again)


# --------------------------------------------------------------- peer: Datumaro


def _datumaro(folder: Path) -> dict:
    if not DATUMARO_PYTHON.is_file():
        pytest.skip(
            f"no Python with Datumaro at {DATUMARO_PYTHON} (python -m venv /tmp/venv-dm && "
            "/tmp/venv-dm/bin/pip install datumaro; or set POSEKIT_DATUMARO_PYTHON)"
        )
    done = subprocess.run(
        [str(DATUMARO_PYTHON), str(PEER_DATUMARO), str(folder)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _with_images(folder: Path, ds: PoseDataset) -> None:
    from PIL import Image

    for item in ds.images:  # Datumaro's CVAT importer wants the image files
        target = folder / "images" / item.image.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (item.image.width, item.image.height)).save(target)


def test_datumaro_reads_posekit_plain_points_layout(tmp_path: Path) -> None:
    skeleton = get_preset("coco17")
    rng = np.random.default_rng(3)
    images = []
    for i in range(3):
        instances = [
            _instance(np.round(rng.uniform(0, 60, (17, 2)), 2), rng.integers(0, 3, 17))
            for _ in range(i)
        ]
        images.append(LabeledImage(ImageRecord(f"img{i}.png", 64, 48, id=i), instances))
    ds = PoseDataset(skeleton, images)
    write_cvat(ds, tmp_path / "annotations.xml", layout="points")
    _with_images(tmp_path, ds)
    peer = _datumaro(tmp_path)
    assert set(peer) == {"img0", "img1", "img2"}
    for item in ds.images:
        got = peer[Path(item.image.file_name).stem]
        assert [g["label"] for g in got] == ["person"] * len(item.instances)
        for g, inst in zip(got, item.instances):
            np.testing.assert_array_equal(np.float32(g["points"]).reshape(-1, 2), inst.keypoints)


def test_datumaro_and_posekit_read_the_real_cvat_files_alike(
    shared_data: Path, tmp_path: Path
) -> None:
    for name in ("images_points.xml", "video_points_track.xml"):
        folder = tmp_path / name
        folder.mkdir()
        ds = read_cvat(shared_data / "formats" / "cvat" / name)
        (folder / name).write_bytes((shared_data / "formats" / "cvat" / name).read_bytes())
        if ds.videos:
            peer = _datumaro(folder)
        else:
            _with_images(folder, ds)
            peer = _datumaro(folder)
        ours = {
            Path(i.image.file_name).stem: [x.keypoints.reshape(-1).tolist() for x in i.instances]
            for i in ds.images
        }
        theirs = {
            k: [np.float32(g["points"]).tolist() for g in v if g["label"] == ds.skeleton.category]
            for k, v in peer.items()
        }
        assert {k: v for k, v in theirs.items() if v} == {k: v for k, v in ours.items() if v}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
