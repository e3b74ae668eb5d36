"""Heatmap codec: centre/scale, UDP warp, DARK decoding, flip handling."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posekit.models import heatmap_codec

INPUT = (192, 256)  # model input (width, height)
HEATMAP = (48, 64)


def gaussian_heatmap(x: float, y: float, size=HEATMAP, sigma: float = 2.0) -> np.ndarray:
    """Unnormalised Gaussian peak (value 1) at continuous heatmap position (x, y)."""
    xs = np.arange(size[0])[None, :]
    ys = np.arange(size[1])[:, None]
    return np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)).astype(np.float32)


boxes_strategy = st.tuples(
    st.floats(-50, 600), st.floats(-50, 400), st.floats(1, 500), st.floats(1, 500)
).map(lambda b: np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]]]))


@given(boxes_strategy)
def test_center_scale_fixes_aspect_and_pads(box):
    centers, scales = heatmap_codec.box_to_center_scale(box, INPUT)
    width, height = box[0, 2] - box[0, 0], box[0, 3] - box[0, 1]
    np.testing.assert_allclose(centers[0], [box[0, 0] + width / 2, box[0, 1] + height / 2])
    assert scales[0, 0] / scales[0, 1] == pytest.approx(192 / 256)
    # The region holds the padded box, and is tight along one side.
    assert scales[0, 0] >= 1.25 * max(width, 1.0) - 1e-6
    assert scales[0, 1] >= 1.25 * max(height, 1.0) - 1e-6
    assert min(scales[0, 0] / (1.25 * width), scales[0, 1] / (1.25 * height)) == pytest.approx(1)


@settings(max_examples=60, deadline=None)
@given(st.floats(5, HEATMAP[0] - 6), st.floats(5, HEATMAP[1] - 6), st.sampled_from([1.5, 2.0, 3.0]))
def test_dark_recovers_subpixel_gaussian_peak(x, y, sigma):
    # At least the blur radius (5 px) from the edge; closer, mirrored borders bias DARK.
    heat = gaussian_heatmap(x, y, sigma=sigma)[None, None]
    coords, _ = heatmap_codec.argmax_heatmaps(heat)
    for blur in (heatmap_codec.DARK_SIGMA, heatmap_codec.TRANSFORMERS_DARK_SIGMA):
        refined = heatmap_codec.refine_dark_udp(coords, heat, sigma=blur)
        assert abs(refined[0, 0, 0] - x) < 0.05
        assert abs(refined[0, 0, 1] - y) < 0.05


def test_dark_beats_argmax_on_offgrid_peak():
    heat = gaussian_heatmap(20.4, 30.6)[None, None]
    coords, maxvals = heatmap_codec.argmax_heatmaps(heat)
    assert coords[0, 0].tolist() == [20.0, 31.0]
    assert maxvals[0, 0] == pytest.approx(np.exp(-(0.4**2 + 0.4**2) / 8), rel=1e-5)
    refined = heatmap_codec.refine_dark_udp(coords, heat)
    assert np.hypot(refined[0, 0, 0] - 20.4, refined[0, 0, 1] - 30.6) < 0.02


def test_dark_on_degenerate_heatmaps_stays_near_argmax():
    heat = np.zeros((1, 2, 64, 48), np.float32)
    heat[0, 1, 10:12, 5] = 0.5  # a two-pixel plateau: its centre is between them
    coords, _ = heatmap_codec.argmax_heatmaps(heat)
    refined = heatmap_codec.refine_dark_udp(coords, heat)
    np.testing.assert_array_equal(refined[0, 0], [0, 0])  # all-zero map: no step
    np.testing.assert_allclose(refined[0, 1], [5.0, 10.5], atol=1e-6)


@settings(max_examples=80, deadline=None)
@given(
    boxes_strategy,
    st.floats(0.02, 0.98),
    st.floats(0.02, 0.98),
    st.sampled_from([(48, 64), (24, 32), (72, 96)]),
)
def test_crop_heatmap_image_mapping_is_exact(box, u, v, heatmap_size):
    """Any box aspect ratio, any position (also over the image border): an image point
    mapped into the heatmap and back returns to itself, and a Gaussian drawn there
    decodes to it within 0.05 heatmap pixels."""
    centers, scales = heatmap_codec.box_to_center_scale(box, INPUT)
    point = centers[0] - scales[0] / 2 + np.array([u, v]) * scales[0]
    in_heatmap = heatmap_codec.image_to_crop(point[None, None], centers, scales, heatmap_size)
    back = heatmap_codec.heatmap_to_image(in_heatmap, centers, scales, heatmap_size)
    np.testing.assert_allclose(back[0, 0], point, atol=1e-7 * max(1.0, np.abs(point).max()))
    # UDP: the crop and heatmap grids share their first and last pixel.
    in_crop = heatmap_codec.image_to_crop(point[None, None], centers, scales, INPUT)
    ratio = (np.array(INPUT) - 1.0) / (np.array(heatmap_size) - 1.0)
    np.testing.assert_allclose(in_crop[0, 0], in_heatmap[0, 0] * ratio, rtol=1e-9, atol=1e-9)
    hx, hy = in_heatmap[0, 0]
    if not (5 <= hx <= heatmap_size[0] - 6 and 5 <= hy <= heatmap_size[1] - 6):
        return
    heat = gaussian_heatmap(hx, hy, heatmap_size)[None, None]
    decoded, _ = heatmap_codec.decode_heatmaps(heat, centers, scales)
    pixel = scales[0] / (np.array(heatmap_size) - 1.0)  # image px per heatmap px
    assert np.all(np.abs(decoded[0, 0] - point) <= 0.05 * pixel)


def test_warp_samples_the_image_bilinearly_with_black_outside():
    """On a linear ramp bilinear sampling is exact, so every crop pixel equals the ramp at
    its UDP source position; samples outside the image are 0."""
    height, width = 120, 200
    ys, xs = np.mgrid[0:height, 0:width]
    ramp = np.stack([xs, ys, (xs + ys) // 2], axis=-1).astype(np.uint8)
    box = np.array([[150.0, 70.0, 230.0, 130.0]])  # runs over the right/bottom border
    centers, scales = heatmap_codec.box_to_center_scale(box, (48, 64))
    crop = heatmap_codec.warp_crops(ramp, centers, scales, (48, 64))[0].astype(np.float64)
    to_image = heatmap_codec.crop_to_image_matrix(centers[0], scales[0], (48, 64))
    jj, ii = np.meshgrid(np.arange(48), np.arange(64))
    src_x = to_image[0, 0] * jj + to_image[0, 2]
    src_y = to_image[1, 1] * ii + to_image[1, 2]
    inside = (src_x >= 0) & (src_x <= width - 1) & (src_y >= 0) & (src_y <= height - 1)
    assert inside.any() and (~inside).any()
    np.testing.assert_allclose(crop[..., 0][inside], src_x[inside], atol=0.5 + 1e-6)
    np.testing.assert_allclose(crop[..., 1][inside], src_y[inside], atol=0.5 + 1e-6)
    assert np.all(crop[~inside] == 0)


@settings(max_examples=40, deadline=None)
@given(boxes_strategy, st.integers(0, 2**31 - 1))
def test_warp_of_flipped_image_is_mirrored_crop(box, seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    width = image.shape[1]
    flipped_box = box.copy()
    flipped_box[:, 0], flipped_box[:, 2] = width - 1 - box[:, 2], width - 1 - box[:, 0]
    c, s = heatmap_codec.box_to_center_scale(box, (24, 32))
    cf, sf = heatmap_codec.box_to_center_scale(flipped_box, (24, 32))
    crop = heatmap_codec.warp_crops(image, c, s, (24, 32)).astype(int)
    crop_f = heatmap_codec.warp_crops(image[:, ::-1], cf, sf, (24, 32)).astype(int)
    # Equal up to rounding of exact .5 ties.
    assert np.abs(crop_f - crop[:, :, ::-1]).max() <= 1


@settings(max_examples=40, deadline=None)
@given(boxes_strategy, st.floats(5, HEATMAP[0] - 8), st.floats(5, HEATMAP[1] - 6))
def test_flipped_heatmaps_decode_to_mirrored_points(box, x, y):
    image_width = 640
    centers, scales = heatmap_codec.box_to_center_scale(box, INPUT)
    heat = np.stack([gaussian_heatmap(x, y), gaussian_heatmap(x + 1.3, y)])[None]
    points, _ = heatmap_codec.decode_heatmaps(heat, centers, scales)
    # The same person in the mirrored image: mirrored box, mirrored heatmaps.
    flipped_box = box.copy()
    flipped_box[:, 0], flipped_box[:, 2] = image_width - 1 - box[:, 2], image_width - 1 - box[:, 0]
    cf, sf = heatmap_codec.box_to_center_scale(flipped_box, INPUT)
    swap = np.array([1, 0])
    mirrored = heatmap_codec.flip_heatmaps_back(heat, swap)
    points_f, _ = heatmap_codec.decode_heatmaps(mirrored, cf, sf)
    tolerance = 0.05 * scales[0, 0] / (HEATMAP[0] - 1)
    np.testing.assert_allclose(
        image_width - 1 - points_f[0, swap, 0], points[0, :, 0], atol=tolerance
    )
    np.testing.assert_allclose(points_f[0, swap, 1], points[0, :, 1], atol=1e-6)


def test_flip_heatmaps_back_swaps_pairs_and_mirrors():
    heat = np.arange(2 * 3 * 2 * 4, dtype=np.float32).reshape(2, 3, 2, 4)
    back = heatmap_codec.flip_heatmaps_back(heat, np.array([2, 1, 0]))
    np.testing.assert_array_equal(back[:, 0], heat[:, 2, :, ::-1])
    np.testing.assert_array_equal(back[:, 1], heat[:, 1, :, ::-1])
    with pytest.raises(ValueError, match="flip_index"):
        heatmap_codec.flip_heatmaps_back(heat, np.array([1, 0]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="kernel"):
        heatmap_codec.refine_dark_udp(np.zeros((1, 1, 2)), np.zeros((1, 1, 8, 8)), kernel=4)
    with pytest.raises(ValueError, match="input_size"):
        heatmap_codec.box_to_center_scale(np.zeros((1, 4)), (1, 256))
    with pytest.raises(ValueError, match="finite"):
        heatmap_codec.box_to_center_scale(np.array([[0, 0, np.nan, 1]]), INPUT)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_default_dark_is_exactly_mirror_symmetric(seed):
    """Any heatmap and its mirror decode to mirrored points (the reference one-diagonal
    mixed derivative is not symmetric; posekit's default central difference is)."""
    rng = np.random.default_rng(seed)
    heat = (rng.random((2, 3, 16, 12)) + 0.01).astype(np.float32)
    coords, _ = heatmap_codec.argmax_heatmaps(heat)
    refined = heatmap_codec.refine_dark_udp(coords, heat)
    mirrored = heat[..., ::-1]
    coords_m, _ = heatmap_codec.argmax_heatmaps(mirrored)
    refined_m = heatmap_codec.refine_dark_udp(coords_m, mirrored)
    np.testing.assert_allclose(11 - refined_m[..., 0], refined[..., 0], atol=1e-9)
    np.testing.assert_allclose(refined_m[..., 1], refined[..., 1], atol=1e-9)
