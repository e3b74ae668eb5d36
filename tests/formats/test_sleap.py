"""Tests for posekit.formats.sleap: the real SLEAP projects (dance video, minimal
instance), files written by posekit read back by sleap-io itself, bad input, and a
property-tested round trip posekit -> .slp -> posekit. Skipped without sleap-io."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.registry import get_format
from posekit.skeleton import Skeleton, get_preset

sio = pytest.importorskip(
    "sleap_io", reason="sleap-io not installed (pip install 'posekit[sleap]')"
)

from posekit.formats.sleap import (  # noqa: E402
    SleapFormatError,
    from_sleap,
    read_sleap,
    to_sleap,
    write_sleap,
)

COCO17 = get_preset("coco17")


@pytest.fixture(scope="module")
def sleap_dir(shared_data: Path) -> Path:
    return shared_data / "formats" / "sleap"


@pytest.fixture(scope="module")
def dance(sleap_dir: Path) -> PoseDataset:
    return read_sleap(sleap_dir / "dance.mp4.labels.slp")


def test_dance_imports_all_450_frames(dance: PoseDataset):
    assert dance.skeleton.name == "coco17"  # the 17 COCO node names give the preset
    assert len(dance.images) == 450
    (video,) = dance.videos
    assert (video.name, video.width, video.height, video.frame_count, video.fps) == (
        "dance.mp4",
        406,
        720,
        450,
        30.0,
    )
    assert [item.image.frame_index for item in dance.images] == list(range(450))
    statuses = [i.status for item in dance.images for i in item.instances]
    assert statuses.count("accepted") == 3 and statuses.count("predicted") == 450
    predicted = dance.images[0].instances[0]
    assert predicted.source == "model:sleap" and predicted.score == pytest.approx(11.7679, abs=1e-3)
    assert predicted.keypoint_scores[0] == pytest.approx(0.80660516, abs=1e-6)
    np.testing.assert_allclose(predicted.keypoints[0], [193.83285522, 230.05151367], rtol=1e-6)
    assert predicted.visibility[16] == 0  # a NaN point


def test_dance_matches_sleap_io(sleap_dir: Path, dance: PoseDataset):
    labels = sio.load_slp(str(sleap_dir / "dance.mp4.labels.slp"))
    for lf, item in zip(labels.labeled_frames, dance.images):
        assert lf.frame_idx == item.image.frame_index
        assert len(lf.instances) == len(item.instances)
        for inst, ours in zip(lf.instances, item.instances):
            xy = inst.points["xy"]
            finite = np.isfinite(xy).all(axis=1)
            np.testing.assert_array_equal(ours.visibility > 0, finite)
            np.testing.assert_array_equal(ours.keypoints[finite], xy[finite].astype(np.float32))
            np.testing.assert_array_equal(
                ours.visibility[finite] == 2, inst.points["visible"][finite]
            )


def test_minimal_instance_and_the_old_json_format(sleap_dir: Path):
    ds = read_sleap(sleap_dir / "minimal_instance.slp")
    assert ds.skeleton.keypoints == ("A", "B") and ds.skeleton.edges == (("A", "B"),)
    assert "no OKS sigmas" in ds.skeleton.sigmas_source
    assert len(ds.images) == 1 and len(ds.images[0].instances) == 2
    assert ds.videos[0].width == 0  # the video is not there and the file has no size
    sized = read_sleap(
        sleap_dir / "minimal_instance.slp",
        video_sizes={"centered_pair_low_quality.mp4": (384, 384)},
    )
    assert sized.images[0].image.width == 384
    with pytest.raises(SleapFormatError, match="old JSON labels format is not supported"):
        read_sleap(sleap_dir / "minimal_instance.json")


def test_node_not_in_template(sleap_dir: Path):
    template = Skeleton.from_dict({"name": "ab", "keypoints": ["A", "C"], "default_sigma": 0.05})
    with pytest.raises(SleapFormatError, match="keypoint 'B' has no counterpart in template 'ab'"):
        read_sleap(sleap_dir / "minimal_instance.slp", template)


def test_not_a_sleap_file(tmp_path: Path):
    path = tmp_path / "x.slp"
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(SleapFormatError, match="no HDF5 signature"):
        read_sleap(path)
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(SleapFormatError, match="cannot read the SLEAP file"):
        read_sleap(path)


def test_symmetries_become_flip_pairs(tmp_path: Path):
    nodes = ["head", "earL", "earR", "tail"]
    skeleton = sio.Skeleton(nodes=[sio.Node(n) for n in nodes], name="mouse")
    skeleton.add_edge("head", "tail")
    skeleton.add_symmetry("earL", "earR")
    video = sio.Video(filename="m.mp4", backend=None, open_backend=False,
                      backend_metadata={"shape": [5, 48, 64, 1]})  # fmt: skip
    inst = sio.Instance.from_numpy(np.arange(8.0).reshape(4, 2), skeleton=skeleton)
    labels = sio.Labels([sio.LabeledFrame(video, 2, [inst])], videos=[video], skeletons=[skeleton])
    ds = from_sleap(labels)
    assert ds.skeleton.flip_pairs == (("earL", "earR"),)
    assert ds.skeleton.edges == (("head", "tail"),)
    assert ds.images[0].image.file_name == "m.mp4/frame_000002.png"
    assert (ds.videos[0].width, ds.videos[0].height, ds.videos[0].frame_count) == (64, 48, 5)


def test_written_file_loads_in_sleap_io(tmp_path: Path, dance: PoseDataset):
    ds = _example()
    path = write_sleap(ds, tmp_path / "out.slp")
    labels = sio.load_slp(str(path))
    # a named track sits at the position of its id (padded with empty default tracks)
    assert [t.name for t in labels.tracks] == [f"track_{i}" for i in range(5)] + ["runner"]
    assert labels.skeletons[0].node_names == list(COCO17.keypoints)
    assert len(labels.skeletons[0].symmetries) == len(COCO17.flip_pairs)
    frames = {(Path(lf.video.filename).name, lf.frame_idx): lf for lf in labels.labeled_frames}
    for item in ds.images:
        key = (item.image.video or item.image.file_name, item.image.frame_index or 0)
        lf = frames[(Path(key[0]).name, key[1])]
        kept = [i for i in item.instances if i.status != "rejected"]
        assert len(lf.instances) == len(kept)
        for inst, ours in zip(lf.instances, kept):
            xy = inst.points["xy"]
            labeled = ours.visibility > 0
            np.testing.assert_array_equal(np.isfinite(xy).all(axis=1), labeled)
            np.testing.assert_array_equal(xy[labeled], ours.keypoints[labeled])
            np.testing.assert_array_equal(inst.points["visible"], ours.visibility == 2)
            name = None if inst.track is None else inst.track.name
            assert name == {None: None, 0: "track_0", 5: "runner"}[ours.track_id]
            assert type(inst).__name__ == (
                "PredictedInstance" if ours.status == "predicted" else "Instance"
            )
    # and the dance project writes back to the same dataset
    back = read_sleap(write_sleap(dance, tmp_path / "dance.slp"))
    assert back == dance


def _example() -> PoseDataset:
    xy = np.tile([[10.0, 20.0]], (17, 1)) + np.arange(17)[:, None]
    vis = np.full(17, 2)
    vis[2], vis[5] = 0, 1
    user = Instance(xy, vis, track_id=0)
    pred = Instance(xy + 1, vis, keypoint_scores=np.where(vis > 0, 0.5, 0), score=0.75,
                    status="predicted", source="model:sleap", track_id=5)  # fmt: skip
    rejected = Instance(xy, vis, status="rejected")
    video = VideoRecord("walk.mp4", 640, 480, frame_count=30, fps=25.0, file_name="clips/walk.mp4")
    frames = [
        LabeledImage(
            ImageRecord("walk.mp4/frame_000003.png", 640, 480, video="walk.mp4", frame_index=3),
            [user, pred],
        ),
        LabeledImage(
            ImageRecord("walk.mp4/frame_000007.png", 640, 480, video="walk.mp4", frame_index=7),
            [rejected],
        ),
        LabeledImage(ImageRecord("stills/a.png", 100, 50), [Instance(xy, vis)]),
    ]
    tracks = [TrackRecord("walk.mp4", 0, keyframes={3}), TrackRecord("walk.mp4", 5, label="runner")]
    return PoseDataset(COCO17, frames, videos=[video], tracks=tracks)


def test_example_round_trip(tmp_path: Path):
    ds = _example()
    back = read_sleap(write_sleap(ds, tmp_path / "x.slp"))
    ds.images[1].instances = []  # the rejected instance is not written
    assert back == ds


def test_registered():
    spec = get_format("sleap")
    assert spec.read is read_sleap and spec.write is write_sleap and spec.extensions == (".slp",)
    caps = spec.capabilities
    assert caps.scores and caps.tracks and caps.video and not caps.boxes


# --------------------------------------------------------------- round trip

K = COCO17.num_keypoints
coordinate = st.floats(-50, 2000, allow_nan=False, width=32)


@st.composite
def instances(draw, track_ids):
    vis = np.array(draw(st.lists(st.sampled_from([0, 1, 2]), min_size=K, max_size=K)))
    xy = np.array(draw(st.lists(st.tuples(coordinate, coordinate), min_size=K, max_size=K)))
    track_id = draw(st.none() | st.sampled_from(track_ids))
    if draw(st.booleans()):
        scores = draw(st.lists(st.floats(0, 1, width=32), min_size=K, max_size=K))
        return Instance(
            xy,
            vis,
            keypoint_scores=np.where(vis > 0, scores, 0),
            score=draw(st.floats(0, 50, width=32)),  # SLEAP stores instance scores as float32
            status="predicted",
            source="model:sleap",
            track_id=track_id,
        )
    return Instance(xy, vis, track_id=track_id)


@st.composite
def datasets(draw):
    videos, images, tracks = [], [], {}
    track_ids = draw(st.lists(st.integers(0, 20), min_size=1, max_size=3, unique=True))
    labels = {t: draw(st.none() | st.sampled_from(["mouse", "rat"])) for t in track_ids}
    if len({v for v in labels.values() if v}) != len([v for v in labels.values() if v]):
        labels = dict.fromkeys(track_ids)
    for v in range(draw(st.integers(0, 2))):
        name = f"v{v}.mp4"
        frames = sorted(draw(st.sets(st.integers(0, 99), min_size=1, max_size=3)))
        fps = draw(st.none() | st.sampled_from([25.0, 29.97]))
        videos.append(
            VideoRecord(name, 320, 240, frame_count=100, fps=fps, file_name=f"videos/{name}")
        )
        for frame in frames:
            items = draw(st.lists(instances(track_ids), max_size=3))
            for inst in items:
                if inst.track_id is None:
                    continue
                track = tracks.setdefault(
                    (name, inst.track_id),
                    TrackRecord(name, inst.track_id, label=labels[inst.track_id]),
                )
                if inst.status == "accepted":
                    track.keyframes.add(frame)
            record = ImageRecord(
                f"{name}/frame_{frame:06d}.png", 320, 240, video=name, frame_index=frame
            )
            images.append(LabeledImage(record, items))
    for s in range(draw(st.integers(0, 2))):
        items = [i.copy(track_id=None) for i in draw(st.lists(instances(track_ids), max_size=2))]
        images.append(LabeledImage(ImageRecord(f"stills/{s}.png", 64 + s, 48), items))
    if not images:
        images.append(LabeledImage(ImageRecord("stills/only.png", 10, 10), []))
    return PoseDataset(
        COCO17,
        images,
        videos=videos,
        tracks=sorted(tracks.values(), key=lambda t: (t.video, t.track_id)),
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ds=datasets())
def test_round_trip_is_lossless(ds: PoseDataset, tmp_path: Path):
    back = from_sleap(to_sleap(ds))  # in memory
    assert back == ds
    assert read_sleap(write_sleap(ds, tmp_path / "rt.slp")) == ds  # and through the file


# --------------------------------------------------------------- frame tables


def _frame_tables(path: Path) -> dict[str, np.ndarray]:
    import h5py

    with h5py.File(path, "r") as f:
        return {name: f[name][()] for name in ("frames", "instances", "points", "pred_points")}


def _same_tables(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].tobytes() == b[name].tobytes(), name


def _save_both_ways(labels, tmp_path: Path) -> None:
    from posekit.formats.sleap_frames import fast_frame_tables

    sio.save_slp(labels, str(tmp_path / "sleap_io.slp"), verbose=False)
    with fast_frame_tables():
        sio.save_slp(labels, str(tmp_path / "posekit.slp"), verbose=False)
    _same_tables(_frame_tables(tmp_path / "sleap_io.slp"), _frame_tables(tmp_path / "posekit.slp"))


def test_frame_tables_equal_sleap_io_on_the_dance_project(tmp_path: Path, dance: PoseDataset):
    """posekit's whole-array writer of the frame tables writes sleap-io's values."""
    _save_both_ways(to_sleap(dance), tmp_path)
    _save_both_ways(to_sleap(_example()), tmp_path)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ds=datasets())
def test_frame_tables_equal_sleap_io(ds: PoseDataset, tmp_path: Path):
    _save_both_ways(to_sleap(ds), tmp_path)


def test_frame_tables_leave_prediction_links_to_sleap_io(tmp_path: Path, sleap_dir: Path):
    labels = sio.load_slp(str(sleap_dir / "minimal_instance.slp"))
    lf = labels.labeled_frames[0]
    user = lf.instances[0]
    pred = sio.PredictedInstance.from_numpy(
        user.numpy(), skeleton=user.skeleton, point_scores=np.ones(len(user.points)), score=0.5
    )
    user.from_predicted = pred
    lf.instances.append(pred)
    _save_both_ways(labels, tmp_path)
