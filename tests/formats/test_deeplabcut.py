"""Tests for posekit.formats.deeplabcut: the real openfield project (CSV and .h5, frames
without images), multi-animal tables, bad input, files written by posekit read by
pandas the way DeepLabCut reads them (and by sleap-io's DLC reader when installed), and
a property-tested round trip posekit -> DeepLabCut -> posekit."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.deeplabcut import (
    DeepLabCutFormatError,
    format_collected_csv,
    from_deeplabcut,
    parse_collected_csv,
    read_deeplabcut,
    to_deeplabcut,
    write_deeplabcut,
)
from posekit.formats.registry import get_format
from posekit.skeleton import Skeleton

PROJECT = "formats/deeplabcut/openfield-Pranav-2018-10-30"
MOUSE = Skeleton.from_dict(
    {
        "name": "mouse",
        "keypoints": ["snout", "left_ear", "right_ear", "tailbase"],
        "edges": [["snout", "tailbase"]],
        "flip_pairs": [["left_ear", "right_ear"]],
        "default_sigma": 0.05,
    }
)

MULTI_CSV = """scorer,,,me,me,me,me,me,me,me,me
individuals,,,mus1,mus1,mus1,mus1,mus2,mus2,mus2,mus2
bodyparts,,,snout,snout,tail,tail,snout,snout,tail,tail
coords,,,x,y,x,y,x,y,x,y
labeled-data,cage,img012.png,1.5,2.5,3,4,,,,
labeled-data,cage,img013.png,5,6,,,7.25,8,9,10
"""


@pytest.fixture(scope="module")
def project(shared_data: Path) -> Path:
    return shared_data / PROJECT


def test_openfield_project(project: Path):
    ds = read_deeplabcut(project)
    assert ds.skeleton.keypoints == ("snout", "leftear", "rightear", "tailbase")
    assert "no OKS sigmas" in ds.skeleton.sigmas_source
    assert len(ds.images) == 116 and ds.num_instances == 116
    (video,) = ds.videos
    assert (video.name, video.width, video.height) == ("m4s1", 640, 480)
    # only img0000/img0001 are on disk; the other 114 frames take the folder's size
    assert all((i.image.width, i.image.height) == (640, 480) for i in ds.images)
    first = ds.images[0]
    assert first.image.file_name == "labeled-data/m4s1/img0000.png"
    assert first.image.frame_index == 0 and first.image.video == "m4s1"
    np.testing.assert_array_equal(
        first.instances[0].keypoints,
        np.array(
            [[21.521, 265.428], [33.819, 265.941], [19.984, 250.056], [87.11, 152.698]], np.float32
        ),
    )
    assert ds.images[-1].image.frame_index == 115
    assert ds.tracks == []


def test_csv_and_h5_agree(project: Path):
    pytest.importorskip("tables", reason="reading .h5 needs pandas and tables")
    folder = project / "labeled-data" / "m4s1"
    from_csv = read_deeplabcut(folder / "CollectedData_Pranav.csv")
    from_h5 = read_deeplabcut(folder / "CollectedData_Pranav.h5")
    assert from_csv == from_h5 == read_deeplabcut(project)


def test_size_from_config_when_no_image_is_there(project: Path, tmp_path: Path):
    copy = tmp_path / "p"
    (copy / "labeled-data" / "m4s1").mkdir(parents=True)
    shutil.copy(project / "config.yaml", copy)
    shutil.copy(
        project / "labeled-data" / "m4s1" / "CollectedData_Pranav.csv",
        copy / "labeled-data" / "m4s1",
    )
    ds = read_deeplabcut(copy)  # the one video set's crop: 0, 640, 0, 480
    assert (ds.videos[0].width, ds.videos[0].height) == (640, 480)


def test_template_given_maps_by_name(project: Path):
    with pytest.raises(
        DeepLabCutFormatError, match=r"body part 'leftear' .* is not in template 'mouse'"
    ):
        read_deeplabcut(project, MOUSE)
    aliased = Skeleton.from_dict(
        {**MOUSE.to_dict(), "aliases": {"left_ear": ["leftear"], "right_ear": ["rightear"]}}
    )
    ds = read_deeplabcut(project, aliased)
    assert ds.skeleton is aliased and ds.images[0].instances[0].visibility.tolist() == [2, 2, 2, 2]


def test_nan_is_not_labeled_and_multi_animal_tracks():
    table = parse_collected_csv(MULTI_CSV)
    assert table.individuals[:2] == ["mus1", "mus1"] and table.scorer == "me"
    template = Skeleton.from_dict(
        {"name": "m", "keypoints": ["snout", "tail"], "default_sigma": 0.05}
    )
    ds = from_deeplabcut([table], {"individuals": ["mus2", "mus1"]}, template)
    first, second = ds.images
    assert first.image.frame_index == 12 and second.image.frame_index == 13
    (only,) = first.instances
    assert only.track_id == 1 and only.keypoints.tolist() == [[1.5, 2.5], [3.0, 4.0]]
    assert [i.track_id for i in second.instances] == [0, 1]
    assert second.instances[1].visibility.tolist() == [2, 0]  # NaN tail
    assert [(t.track_id, t.label, t.keyframes) for t in ds.tracks] == [
        (0, "mus2", {13}),
        (1, "mus1", {12, 13}),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MULTI_CSV.replace("1.5,", "abc,"),
            r"row 5 \('labeled-data/cage/img012.png'\), column 4 \(snout x\): 'abc'",
        ),
        (MULTI_CSV.replace("coords,", "coordz,"), "missing the 'coords' header row"),
        (MULTI_CSV.replace(",,,,\n", ",,,\n"), "row 5 has 10 cells, expected 11"),
        (MULTI_CSV.replace("coords,,,x", "coords,,,likelihood"), "expected x or y"),
        (MULTI_CSV.replace("1.5,2.5", "1.5,"), "'snout' has only one of x, y"),
        (MULTI_CSV.replace("img013", "img012"), "listed twice"),
        (
            MULTI_CSV.replace("labeled-data,cage,img012.png", "..,..,x.png"),
            r"row 1 \('../../x.png'\)",
        ),
        (MULTI_CSV.replace("mus2", "single"), "unique body parts"),
        (
            MULTI_CSV.replace("7.25,8", "1e300,8"),
            r"row 2 \('labeled-data/cage/img013.png'\): a "
            "value is beyond float32 range",
        ),
        # the first problem in row order (rows, then individuals) is the one reported
        (
            MULTI_CSV.replace("labeled-data,cage,img012.png", "..,..,x.png").replace(
                "7.25,8", "7.25,"
            ),
            r"row 1 \('../../x.png'\)",
        ),
        (MULTI_CSV.replace("1.5,2.5", "1.5,").replace("img013", "img012"), "only one of x, y"),
        (MULTI_CSV.replace("5,6,,,7.25,8,9,10", "1e300,6,,,7.25,8,9,"), r"row 2 .*float32 range"),
        (MULTI_CSV.replace("5,6,,,7.25,8,9,10", "5,,,,1e300,8,9,10"), r"row 2 .*'snout' has only"),
    ],
)
def test_bad_tables_name_row_and_column(text: str, message: str):
    template = Skeleton.from_dict(
        {"name": "m", "keypoints": ["snout", "tail"], "default_sigma": 0.05}
    )
    with pytest.raises(DeepLabCutFormatError, match=message):
        from_deeplabcut([parse_collected_csv(text)], None, template)


def test_bad_config(tmp_path: Path):
    (tmp_path / "config.yaml").write_text("bodyparts: [a, b\n", "utf-8")
    with pytest.raises(DeepLabCutFormatError, match="not valid YAML"):
        read_deeplabcut(tmp_path)


# --------------------------------------------------------------- export


def _multi() -> PoseDataset:
    xy = np.array([[1.5, 2.0], [3.0, 4.25], [5, 6], [7, 8]], np.float32)
    vis = np.array([2, 1, 0, 2])
    video = VideoRecord("arena", 320, 240)
    frames = [
        LabeledImage(
            ImageRecord("labeled-data/arena/img0003.png", 320, 240, video="arena", frame_index=3),
            [Instance(xy, vis, track_id=0), Instance(xy + 10, vis, track_id=2)],
        ),
        LabeledImage(
            ImageRecord("labeled-data/arena/img0009.png", 320, 240, video="arena", frame_index=9),
            [Instance(xy + 1, vis, track_id=2)],
        ),
    ]
    tracks = [
        TrackRecord("arena", 0, keyframes={3}),
        TrackRecord("arena", 2, keyframes={3, 9}, label="bob"),
    ]
    return PoseDataset(MOUSE, frames, videos=[video], tracks=tracks)


def test_export_multi_animal_project(tmp_path: Path):
    config_path = write_deeplabcut(_multi(), tmp_path / "proj", scorer="me")
    config = yaml.safe_load(config_path.read_text("utf-8"))
    assert config["multianimalproject"] is True
    assert config["individuals"] == ["individual0", "individual1", "bob"]
    assert config["multianimalbodyparts"] == list(MOUSE.keypoints)
    assert config["skeleton"] == [["snout", "tailbase"]]
    assert config["video_sets"] == {"videos/arena.mp4": {"crop": "0, 320, 0, 240"}}
    csv_path = tmp_path / "proj" / "labeled-data" / "arena" / "CollectedData_me.csv"
    table = parse_collected_csv(csv_path.read_text("utf-8"))
    assert table.individuals[0] == "individual0" and table.coords[:2] == ["x", "y"]
    back = read_deeplabcut(tmp_path / "proj", MOUSE)
    expected = _multi()
    for item in expected.images:  # DeepLabCut has no occlusion: occluded comes back visible
        for inst in item.instances:
            inst.visibility = np.where(inst.visibility > 0, 2, 0).astype(np.uint8)
    assert back == expected


def test_written_files_read_like_deeplabcut_reads_them(tmp_path: Path):
    pd = pytest.importorskip("pandas", reason="pandas not installed")
    pytest.importorskip("tables", reason="tables not installed")
    write_deeplabcut(_multi(), tmp_path / "proj", scorer="me")
    folder = tmp_path / "proj" / "labeled-data" / "arena"
    frame = pd.read_hdf(folder / "CollectedData_me.h5")
    assert list(frame.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]
    assert frame.loc[("labeled-data", "arena", "img0003.png"), ("me", "bob", "snout", "x")] == 11.5
    from_csv = pd.read_csv(
        folder / "CollectedData_me.csv", header=[0, 1, 2, 3], index_col=[0, 1, 2]
    )
    np.testing.assert_array_equal(from_csv.to_numpy(), frame.to_numpy())


def test_written_files_load_in_sleap_io_dlc_reader(tmp_path: Path, project: Path):
    sio = pytest.importorskip("sleap_io", reason="sleap-io not installed")
    ds = read_deeplabcut(project)
    present = {i.image.file_name: project / i.image.file_name for i in ds.images}
    media = {name: path for name, path in present.items() if path.is_file()}
    assert len(media) == 2  # sleap-io's reader needs the folder's images to be there
    write_deeplabcut(ds, tmp_path / "proj", scorer="me", h5=False, media=media)
    labels = sio.load_dlc(str(tmp_path / "proj" / "labeled-data" / "m4s1" / "CollectedData_me.csv"))
    assert len(labels.labeled_frames) == 116
    nodes = labels.skeletons[0].node_names  # sleap-io orders the nodes its own way
    assert sorted(nodes) == sorted(ds.skeleton.keypoints)
    order = [ds.skeleton.index(n) for n in nodes]
    for lf, item in zip(labels.labeled_frames, ds.images):
        np.testing.assert_array_equal(
            lf.instances[0].numpy().astype(np.float32), item.instances[0].keypoints[order]
        )


def test_still_images_and_media(tmp_path: Path):
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (30, 20)).save(image)
    xy = np.array([[1, 2], [3, 4], [5, 6], [7, 8]], np.float32)
    ds = PoseDataset(
        MOUSE, [LabeledImage(ImageRecord("dir/a.png", 30, 20), [Instance(xy, np.full(4, 2))])]
    )
    write_deeplabcut(ds, tmp_path / "out", media={"dir/a.png": image})
    assert (tmp_path / "out" / "labeled-data" / "posekit" / "dir__a.png").is_file()
    back = read_deeplabcut(tmp_path / "out", MOUSE)
    assert back.images[0].image.file_name == "labeled-data/posekit/dir__a.png"
    assert (back.images[0].image.width, back.images[0].image.height) == (30, 20)
    assert back.images[0].instances == ds.images[0].instances


def test_single_animal_with_two_instances_becomes_multi_animal():
    xy = np.zeros((4, 2), np.float32)
    ds = PoseDataset(
        MOUSE, [LabeledImage(ImageRecord("x.png", 9, 9), [Instance(xy, np.full(4, 2))] * 2)]
    )
    config, tables = to_deeplabcut(ds)
    assert config["multianimalproject"] and config["individuals"] == ["individual0", "individual1"]
    assert tables["posekit"].individuals is not None


def test_registered():
    spec = get_format("deeplabcut")
    assert spec.read is read_deeplabcut and spec.write is write_deeplabcut and spec.kind == "folder"
    caps = spec.capabilities
    assert caps.visibility_states == (0, 2) and not caps.scores and caps.tracks and not caps.boxes


# --------------------------------------------------------------- round trip

K = MOUSE.num_keypoints


@st.composite
def datasets(draw):
    multi = draw(st.booleans())
    videos, images, tracks = [], [], {}
    for v in range(draw(st.integers(1, 2))):
        name = f"vid{v}"
        width, height = draw(st.integers(1, 2000)), draw(st.integers(1, 2000))
        videos.append(VideoRecord(name, width, height))
        for frame in sorted(draw(st.sets(st.integers(0, 9999), min_size=1, max_size=3))):
            ids = sorted(draw(st.sets(st.integers(0, 4), max_size=3))) if multi else [None]
            items = []
            for track_id in ids:
                vis = np.array(draw(st.lists(st.sampled_from([0, 2]), min_size=K, max_size=K)))
                if not vis.any():
                    continue
                coords = st.floats(-100, 5000, allow_nan=False, width=32)
                xy = draw(st.lists(st.tuples(coords, coords), min_size=K, max_size=K))
                items.append(Instance(np.array(xy), vis, track_id=track_id))
                if track_id is not None:
                    tracks.setdefault((name, track_id), TrackRecord(name, track_id)).keyframes.add(
                        frame
                    )
            if multi and not any(i.track_id is not None for i in items):
                items = []
            record = ImageRecord(
                f"labeled-data/{name}/img{frame:04d}.png",
                width,
                height,
                video=name,
                frame_index=frame,
            )
            images.append(LabeledImage(record, items))
    if multi and not tracks:
        return PoseDataset(MOUSE, [], videos=[], tracks=[])
    return PoseDataset(
        MOUSE,
        images,
        videos=videos,
        tracks=sorted(tracks.values(), key=lambda t: (t.video, t.track_id)),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_round_trip_is_lossless(ds: PoseDataset):
    config, tables = to_deeplabcut(ds)
    parsed = [
        parse_collected_csv(format_collected_csv(tables[v.name]))
        for v in ds.videos
        if v.name in tables
    ]
    assert from_deeplabcut(parsed, config, MOUSE) == ds
