"""Drawing on a real sample image: colours, occluded/unlabeled handling, sizes, files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from posekit import Instance, get_preset
from posekit.media.image import load_image
from posekit.render import (
    OCCLUDED_COLOR,
    PREDICTED_BOX_COLOR,
    RenderError,
    draw_instances,
    render_coco,
    style_for_size,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "coco-val2017-sample"
IMAGE = "000000197388.jpg"
ANNOTATION_ID = 467657  # several visible and several occluded (v=1) points


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, Instance]:
    if not (DATA / "images" / IMAGE).exists():
        pytest.skip(f"shared sample data not found at {DATA}")
    gt = json.loads((DATA / "person_keypoints.json").read_text(encoding="utf-8"))
    ann = next(a for a in gt["annotations"] if a["id"] == ANNOTATION_ID)
    kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
    x, y, w, h = ann["bbox"]
    inst = Instance(kps[:, :2], kps[:, 2].astype(np.uint8), box=[x, y, x + w, y + h], score=0.87)
    return load_image(DATA / "images" / IMAGE), inst


COCO = get_preset("coco17")


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-9), 0.0, 1.0)
    return float(np.hypot(*(p - (a + t * ab))))


def _isolated(inst: Instance, visibility: int, margin: float) -> int:
    """A keypoint with the given visibility whose neighbourhood no other element touches."""
    pts = inst.keypoints.astype(np.float64)
    vis = inst.visibility
    for k in np.flatnonzero(vis == visibility):
        others = [j for j in np.flatnonzero(vis > 0) if j != k]
        if any(np.hypot(*(pts[j] - pts[k])) < margin for j in others):
            continue
        edges = [(a, b) for a, b in COCO.edge_index if vis[a] and vis[b] and k not in (a, b)]
        if any(_segment_distance(pts[k], pts[a], pts[b]) < margin for a, b in edges):
            continue
        return int(k)
    pytest.fail(f"no isolated keypoint with visibility {visibility} in the sample")


def test_visible_keypoint_takes_its_colour_and_input_is_unchanged(sample):
    image, inst = sample
    before = image.copy()
    out = draw_instances(image, [inst], COCO)
    np.testing.assert_array_equal(image, before)
    assert out is not image and out.dtype == np.uint8 and out.shape == image.shape
    _, radius = style_for_size(image.shape[1], image.shape[0])
    k = _isolated(inst, 2, margin=2 * radius + 4)
    x, y = np.rint(inst.keypoints[k]).astype(int)
    assert tuple(out[y, x]) == tuple(COCO.keypoint_colors[k])
    assert not np.array_equal(out, image)


def test_occluded_keypoint_is_a_grey_ring(sample):
    image, inst = sample
    out = draw_instances(image, [inst], COCO, draw_boxes=False)
    _, radius = style_for_size(image.shape[1], image.shape[0])
    k = _isolated(inst, 1, margin=2 * radius + 4)
    x, y = np.rint(inst.keypoints[k]).astype(int)
    for dx, dy in ((radius, 0), (-radius, 0), (0, radius), (0, -radius)):
        pixel = out[y + dy, x + dx].astype(int)
        assert np.all(np.abs(pixel - np.array(OCCLUDED_COLOR)) <= 12), (dx, dy, pixel)
    # the template colour is not used for an occluded point
    disc = out[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3)
    assert not any(tuple(p) == tuple(COCO.keypoint_colors[k]) for p in disc)


def test_unlabeled_keypoint_and_its_edges_are_not_drawn(sample):
    image, inst = sample
    _, radius = style_for_size(image.shape[1], image.shape[0])
    k = _isolated(inst, 2, margin=3 * radius + 6)
    x, y = np.rint(inst.keypoints[k]).astype(int)
    window = np.s_[y - radius : y + radius + 1, x - radius : x + radius + 1]
    drawn = draw_instances(image, [inst], COCO, draw_boxes=False)
    assert not np.array_equal(drawn[window], image[window])  # the check can fail
    visibility = inst.visibility.copy()
    visibility[k] = 0
    hidden = draw_instances(image, [inst.copy(visibility=visibility)], COCO, draw_boxes=False)
    np.testing.assert_array_equal(hidden[window], image[window])
    # points below min_keypoint_score are hidden the same way
    scores = np.ones(COCO.num_keypoints, np.float32)
    scores[k] = 0.1
    low = draw_instances(
        image, [inst.copy(keypoint_scores=scores)], COCO, draw_boxes=False, min_keypoint_score=0.3
    )
    np.testing.assert_array_equal(low[window], image[window])


def test_predicted_box_is_dashed_and_accepted_box_solid(sample):
    image, inst = sample
    blank = np.zeros_like(image)
    x1, _, x2, y2 = np.rint(inst.box).astype(int)
    # sample the bottom edge between the corners, away from keypoints
    row = y2
    columns = np.arange(x1 + 5, x2 - 5)
    bare = inst.copy(visibility=np.zeros(COCO.num_keypoints, np.uint8))
    # the box edge is at a fractional y: look at the 3 rows around it
    band = np.s_[row - 1 : row + 2, columns]
    solid = draw_instances(blank, [bare], COCO, draw_scores=False)
    assert np.all(solid[band].max(axis=(0, 2)) > 0)
    dashed = draw_instances(blank, [bare.copy(status="predicted")], COCO, draw_scores=False)
    on = dashed[band].max(axis=0)
    assert np.any(on.max(axis=1) == 0), "a dashed box has gaps"
    # anti-aliased 1 px line at a fractional y: the colour is scaled, its hue kept
    brightest = on[np.argmax(on.sum(axis=1))].astype(float)
    np.testing.assert_allclose(
        brightest / brightest.max(), np.array(PREDICTED_BOX_COLOR) / 255, atol=0.05
    )


def test_score_label_is_written_only_when_asked(sample):
    image, inst = sample
    bare = inst.copy(visibility=np.zeros(COCO.num_keypoints, np.uint8))
    with_score = draw_instances(image, [bare], COCO, draw_scores=True)
    without = draw_instances(image, [bare], COCO, draw_scores=False)
    assert np.count_nonzero(np.any(with_score != without, axis=2)) > 50
    no_boxes = draw_instances(image, [bare], COCO, draw_boxes=False)
    np.testing.assert_array_equal(no_boxes, image)


@pytest.mark.parametrize("width", [320, 4000])
def test_small_and_large_images(sample, width):
    image, inst = sample
    scale = width / image.shape[1]
    height = round(image.shape[0] * scale)
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    scaled = inst.copy(keypoints=inst.keypoints * scale, box=inst.box * scale)
    out = draw_instances(resized, [scaled], COCO)
    assert out.shape == resized.shape
    thickness, radius = style_for_size(width, height)
    assert thickness >= 2 and radius > thickness
    k = _isolated(scaled, 2, margin=2 * radius + 4)
    x, y = np.rint(scaled.keypoints[k]).astype(int)
    assert tuple(out[y, x]) == tuple(COCO.keypoint_colors[k])
    # the disc is about radius wide in every direction
    assert tuple(out[y, x + radius - 1]) == tuple(COCO.keypoint_colors[k])


def test_style_scales_with_image_size():
    small, large = style_for_size(320, 240), style_for_size(4000, 3000)
    assert small[0] >= 2 and large[0] >= 6 * small[0] // 2
    assert style_for_size(4000, 3000, thickness=3)[0] == 3
    with pytest.raises(RenderError, match="thickness"):
        style_for_size(100, 100, thickness=0)


def test_bad_inputs_raise_clear_errors(sample):
    image, inst = sample
    with pytest.raises(RenderError, match="RGB uint8"):
        draw_instances(image.astype(np.float32), [inst], COCO)
    with pytest.raises(RenderError, match="17 keypoints but template 'crowdpose14' has 14"):
        draw_instances(image, [inst], get_preset("crowdpose14"))


def _dataset(file_name: str, inst: Instance, width: int, height: int) -> SimpleNamespace:
    """A dataset object in the shape of ``posekit.dataset.PoseDataset``."""
    record = SimpleNamespace(file_name=file_name, width=width, height=height, id=1)
    return SimpleNamespace(images=[SimpleNamespace(image=record, instances=[inst])], skeleton=COCO)


def test_render_coco_mirrors_relative_paths(sample, tmp_path):
    image, inst = sample
    root = tmp_path / "images"
    (root / "val").mkdir(parents=True)
    shutil.copy(DATA / "images" / IMAGE, root / "val" / IMAGE)
    original = (root / "val" / IMAGE).read_bytes()
    dataset = _dataset(f"val/{IMAGE}", inst, image.shape[1], image.shape[0])
    written = render_coco(dataset, root, tmp_path / "out", draw_scores=False)
    assert written == [tmp_path / "out" / "val" / IMAGE]
    assert (root / "val" / IMAGE).read_bytes() == original
    rendered = load_image(written[0])
    assert rendered.shape == image.shape
    expected = draw_instances(image, [inst], COCO, draw_scores=False)
    # JPEG round trip: close, not equal
    assert np.mean(np.abs(rendered.astype(int) - expected.astype(int))) < 4


def test_render_coco_refuses_unsafe_names_and_overwriting(sample, tmp_path):
    _, inst = sample
    root = tmp_path / "images"
    root.mkdir()
    shutil.copy(DATA / "images" / IMAGE, root / IMAGE)
    with pytest.raises(RenderError, match="not a safe relative path"):
        render_coco(_dataset(f"../{IMAGE}", inst, 640, 392), root, tmp_path / "out")
    with pytest.raises(RenderError, match="not a safe relative path"):
        render_coco(_dataset("/etc/passwd.jpg", inst, 640, 392), root, tmp_path / "out")
    with pytest.raises(RenderError, match="overwrite the input"):
        render_coco(_dataset(IMAGE, inst, 640, 392), root, root)


def test_render_coco_from_a_coco_file(tmp_path):
    import posekit.formats.coco  # noqa: F401  (a broken module must fail the test, not skip it)

    if not DATA.exists():
        pytest.skip(f"shared sample data not found at {DATA}")
    written = render_coco(DATA / "person_keypoints.json", DATA / "images", tmp_path)
    assert sorted(p.name for p in written) == sorted(
        p.name for p in (DATA / "images").glob("*.jpg")
    )
    for path in written:
        assert path.parent == tmp_path
        original = load_image(DATA / "images" / path.name)
        rendered = load_image(path)
        assert rendered.shape == original.shape
        assert np.mean(np.abs(rendered.astype(int) - original.astype(int))) > 0.5
