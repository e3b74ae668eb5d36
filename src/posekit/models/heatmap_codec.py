"""Top-down heatmap codec shared by every heatmap pose backend (ViTPose, ViTPose++, ...).

The details here decide accuracy, so they are written once:

* **Box -> centre/scale.** The box is grown to the model input's aspect ratio
  (3:4 for 256x192) and padded by 1.25, as in SimpleBaseline / ViTPose.
* **UDP affine warp** (Huang et al., "The Devil is in the Details: Delving into
  Unbiased Data Processing for Human Pose Estimation", CVPR 2020): the region of
  interest, ``[cx - w/2, cx + w/2]`` in pixel-index coordinates, is mapped so that
  its ends land on the *first and last pixel* of the crop (``0`` and ``W - 1``),
  and heatmaps are mapped back the same way (``0`` and ``Wh - 1``). Resizing and
  flipping are then unbiased: a horizontal flip maps pixel ``j`` to ``W - 1 - j``
  with no half-pixel shift.
* **Decoding**: per-keypoint argmax, then DARK refinement (Zhang et al.,
  "Distribution-Aware Coordinate Representation for Human Pose Estimation",
  CVPR 2020): blur the heatmap with a Gaussian, take its logarithm and move the
  argmax by one Newton step ``-H^-1 g`` (the log of a Gaussian is quadratic).
* **Flip test**: run the horizontally mirrored crop too, mirror its heatmaps back
  with left/right channels swapped by the template's flip pairs, and average.

Coordinates are image pixel coordinates with pixel ``i`` centred at ``i`` (the
convention of :class:`posekit.core.Instance`). The conventions match the
reference ViTPose pipeline of Hugging Face transformers
(``VitPoseImageProcessor``): same centre/scale, same UDP warp, same heatmap to
image mapping. One documented difference: the DARK blur. transformers blurs with
sigma 0.8; the original ViTPose/mmpose code (``post_dark_udp``, kernel 11) and
the DARK paper use OpenCV's default sigma for an 11-tap kernel, 2.0, which
:data:`DARK_SIGMA` follows. For a Gaussian-shaped heatmap both give the same peak;
pass ``dark_sigma=TRANSFORMERS_DARK_SIGMA, dark_reference=True`` to reproduce
transformers. posekit's default DARK step also differs in two small ways that only
matter on degenerate heatmaps or for exact mirror symmetry (see
:func:`refine_dark_udp`).

Only numpy is needed.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DARK_KERNEL",
    "DARK_SIGMA",
    "PADDING",
    "TRANSFORMERS_DARK_SIGMA",
    "argmax_heatmaps",
    "box_to_center_scale",
    "crop_to_image_matrix",
    "decode_heatmaps",
    "flip_heatmaps_back",
    "heatmap_to_image",
    "image_to_crop",
    "image_to_crop_matrix",
    "refine_dark_udp",
    "rescore_instances",
    "warp_crops",
]

#: Box padding of SimpleBaseline / ViTPose top-down models.
PADDING = 1.25
#: DARK modulation kernel size (ViTPose test config ``modulate_kernel=11``).
DARK_KERNEL = 11
#: OpenCV's default sigma for an 11-tap Gaussian: 0.3 * ((11 - 1) / 2 - 1) + 0.8.
DARK_SIGMA = 2.0
#: The blur sigma of transformers' ``post_dark_unbiased_data_processing``.
TRANSFORMERS_DARK_SIGMA = 0.8
#: Keypoint scores above this count towards the rescored instance score.
RESCORE_THRESHOLD = 0.2


def _as_size(size: tuple[int, int] | list[int] | np.ndarray, what: str) -> tuple[int, int]:
    width, height = (int(v) for v in size)
    if width < 2 or height < 2:
        raise ValueError(f"{what} must be at least 2x2 (width, height), got {width}x{height}")
    return width, height


def box_to_center_scale(
    boxes: np.ndarray, input_size: tuple[int, int], padding: float = PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """Centres and region sizes of the crops for ``boxes``.

    The box is enlarged along one axis to the aspect ratio of the model input,
    then both sides are multiplied by ``padding``. Degenerate boxes are given a
    side of at least one pixel so the warp stays invertible.

    Args:
        boxes: ``(N, 4)`` xyxy boxes in image pixels.
        input_size: model input ``(width, height)``, e.g. ``(192, 256)``.
        padding: enlargement factor.

    Returns:
        ``centers (N, 2) float64`` and ``scales (N, 2) float64``: region width and
        height in image pixels.

    Example:
        >>> c, s = box_to_center_scale(np.array([[0, 0, 30, 80]]), (192, 256))
        >>> c.tolist(), s.tolist()
        ([[15.0, 40.0]], [[75.0, 100.0]])
    """
    width, height = _as_size(input_size, "input_size")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not np.all(np.isfinite(boxes)):
        raise ValueError("box_to_center_scale: boxes must be finite")
    aspect = width / height
    centers = np.stack([(boxes[:, 0] + boxes[:, 2]) * 0.5, (boxes[:, 1] + boxes[:, 3]) * 0.5], 1)
    box_w = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    box_h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    wider = box_w > aspect * box_h
    region_w = np.where(wider, box_w, box_h * aspect)
    region_h = np.where(wider, box_w / aspect, box_h)
    scales = np.stack([region_w, region_h], axis=1) * float(padding)
    return centers, scales


def image_to_crop_matrix(
    center: np.ndarray, scale: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """``(2, 3)`` UDP affine matrix from image pixels to a ``size = (W, H)`` grid.

    The region ``[cx - sw/2, cx + sw/2]`` maps onto ``[0, W - 1]`` (Huang et al.,
    CVPR 2020), likewise in y.
    """
    width, height = _as_size(size, "size")
    sx = (width - 1.0) / float(scale[0])
    sy = (height - 1.0) / float(scale[1])
    return np.array(
        [
            [sx, 0.0, sx * (0.5 * float(scale[0]) - float(center[0]))],
            [0.0, sy, sy * (0.5 * float(scale[1]) - float(center[1]))],
        ],
        dtype=np.float64,
    )


def crop_to_image_matrix(
    center: np.ndarray, scale: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """``(2, 3)`` inverse of :func:`image_to_crop_matrix`: grid of ``size`` -> image."""
    width, height = _as_size(size, "size")
    kx = float(scale[0]) / (width - 1.0)
    ky = float(scale[1]) / (height - 1.0)
    return np.array(
        [
            [kx, 0.0, float(center[0]) - 0.5 * float(scale[0])],
            [0.0, ky, float(center[1]) - 0.5 * float(scale[1])],
        ],
        dtype=np.float64,
    )


def image_to_crop(
    points: np.ndarray, centers: np.ndarray, scales: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """Map image points ``(N, K, 2)`` into the ``size`` grid of each crop (UDP)."""
    width, height = _as_size(size, "size")
    points = np.asarray(points, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)[:, None, :]
    scales = np.asarray(scales, dtype=np.float64)[:, None, :]
    factor = np.array([width - 1.0, height - 1.0])
    return (points - centers + 0.5 * scales) * factor / scales


def heatmap_to_image(
    coords: np.ndarray, centers: np.ndarray, scales: np.ndarray, heatmap_size: tuple[int, int]
) -> np.ndarray:
    """Map heatmap coordinates ``(N, K, 2)`` back to image pixels (UDP).

    Args:
        coords: ``(N, K, 2)`` x, y in heatmap pixels.
        centers: ``(N, 2)`` crop centres from :func:`box_to_center_scale`.
        scales: ``(N, 2)`` crop region sizes.
        heatmap_size: ``(width, height)`` of the heatmaps.

    Returns:
        ``(N, K, 2) float64`` image coordinates.
    """
    width, height = _as_size(heatmap_size, "heatmap_size")
    coords = np.asarray(coords, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)[:, None, :]
    scales = np.asarray(scales, dtype=np.float64)[:, None, :]
    factor = np.array([width - 1.0, height - 1.0])
    return coords * scales / factor + centers - 0.5 * scales


def _axis_samples(gain: float, offset: float, out_len: int, in_len: int):
    """Bilinear sampling along one axis for the crop mapping ``j = gain * x + offset``:
    lower index, upper index, upper weight, and which samples fall inside the image."""
    source = (np.arange(out_len, dtype=np.float64) - offset) / gain
    # Snap to a 2^-16-pixel grid: far finer than matters, and it makes the warp of a
    # mirrored image and mirrored box exactly the mirrored crop (float round-off in
    # the sampling positions would otherwise round some pixels differently).
    source = np.round(source * 65536.0) / 65536.0
    inside = (source >= -1e-9) & (source <= in_len - 1 + 1e-9)
    clipped = np.clip(source, 0.0, in_len - 1.0)
    lower = np.minimum(np.floor(clipped).astype(np.int64), max(in_len - 2, 0))
    upper = np.minimum(lower + 1, in_len - 1)
    return lower, upper, clipped - lower, inside


def warp_crops(
    image: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    input_size: tuple[int, int],
) -> np.ndarray:
    """UDP crops of one image.

    The warp has no rotation, so it is separable: each crop is sampled with exact
    float bilinear interpolation (no 1/32-pixel coordinate quantisation as in
    OpenCV's ``warpAffine``). Samples outside the pixel-centre extent of the image,
    ``[0, W - 1] x [0, H - 1]``, are black; this is the border convention of the
    reference pipeline (scipy ``affine_transform``, mode ``constant``).

    Args:
        image: ``(H, W, 3) uint8`` RGB image.
        centers: ``(N, 2)`` crop centres.
        scales: ``(N, 2)`` region sizes in image pixels.
        input_size: model input ``(width, height)``.

    Returns:
        ``(N, height, width, 3) uint8`` crops.
    """
    width, height = _as_size(input_size, "input_size")
    image = np.asarray(image)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"warp_crops: expected an (H, W, C) uint8 image, got {image.shape}")
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    scales = np.asarray(scales, dtype=np.float64).reshape(-1, 2)
    crops = np.empty((centers.shape[0], height, width, image.shape[2]), dtype=np.uint8)
    for i in range(centers.shape[0]):
        matrix = image_to_crop_matrix(centers[i], scales[i], (width, height))
        x0, x1, fx, in_x = _axis_samples(matrix[0, 0], matrix[0, 2], width, image.shape[1])
        y0, y1, fy, in_y = _axis_samples(matrix[1, 1], matrix[1, 2], height, image.shape[0])
        # y first on the needed column span only, then x: two small gathers, in place.
        lo, hi = int(x0.min()), int(x1.max()) + 1
        # float64: blends of 8-bit values with 2^-16 weights stay exact.
        rows = image[y0, lo:hi].astype(np.float64)
        below = image[y1, lo:hi].astype(np.float64)
        below -= rows
        below *= fy[:, None, None]
        rows += below
        crop = rows[:, x0 - lo]
        right = rows[:, x1 - lo]
        right -= crop
        right *= fx[None, :, None]
        crop += right
        crop[~in_y] = 0
        crop[:, ~in_x] = 0
        np.clip(np.rint(crop, out=crop), 0, 255, out=crop)
        crops[i] = crop
    return crops


def flip_heatmaps_back(heatmaps: np.ndarray, flip_index: np.ndarray) -> np.ndarray:
    """Heatmaps of a mirrored crop, mirrored back with left/right channels swapped.

    With UDP no half-pixel shift is needed: column ``j`` maps to ``W - 1 - j``.

    Args:
        heatmaps: ``(N, K, h, w)`` heatmaps predicted on horizontally flipped crops.
        flip_index: ``(K,)`` for each channel, its mirror partner (itself if none).
    """
    flip_index = np.asarray(flip_index, dtype=np.int64)
    if flip_index.shape != (heatmaps.shape[1],):
        raise ValueError(
            f"flip_heatmaps_back: flip_index has shape {flip_index.shape}, expected "
            f"({heatmaps.shape[1]},) for {heatmaps.shape[1]} heatmap channels"
        )
    return heatmaps[:, flip_index, :, ::-1]


def argmax_heatmaps(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer peak positions and peak values.

    Args:
        heatmaps: ``(N, K, h, w)``.

    Returns:
        ``coords (N, K, 2) float64`` (x, y) and ``maxvals (N, K) float64``.
    """
    heatmaps = np.asarray(heatmaps)
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps: expected shape (N, K, h, w), got {heatmaps.shape}")
    n, k, _, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    index = np.argmax(flat, axis=2)
    maxvals = np.take_along_axis(flat, index[..., None], axis=2)[..., 0]
    coords = np.stack([index % w, index // w], axis=-1).astype(np.float64)
    return coords, maxvals.astype(np.float64)


def _gaussian_taps(kernel: int, sigma: float) -> np.ndarray:
    radius = (kernel - 1) // 2
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def _blurred_neighbourhood(
    heatmaps: np.ndarray, x: np.ndarray, y: np.ndarray, kernel: int, sigma: float
) -> np.ndarray:
    """Gaussian-blurred heatmap values on the 3x3 neighbourhood of ``(x, y)``.

    Returns ``(N, K, 3, 3)`` values at rows ``y-1..y+1`` and columns ``x-1..x+1``,
    clamped to the map (edge padding after blurring, as the reference code pads the
    log map). The blur uses mirrored borders (``abc|cba``: scipy ``reflect``,
    OpenCV ``BORDER_REFLECT``). Only the 11x11 windows that feed these 9 values
    are blurred, not the whole map.
    """
    taps = _gaussian_taps(kernel, sigma)
    radius = taps.size // 2
    n, k, h, w = heatmaps.shape
    padded = np.pad(
        heatmaps, ((0, 0), (0, 0), (radius, radius), (radius, radius)), mode="symmetric"
    )
    offsets = np.arange(-1, 2)
    taps_range = np.arange(taps.size)
    # Window rows/cols in padded coordinates: (N, K, 3, kernel).
    rows = np.clip(y[..., None] + offsets, 0, h - 1)[..., None] + taps_range
    cols = np.clip(x[..., None] + offsets, 0, w - 1)[..., None] + taps_range
    ni = np.arange(n)[:, None, None, None, None, None]
    ki = np.arange(k)[None, :, None, None, None, None]
    windows = padded[
        ni, ki, rows[:, :, :, :, None, None], cols[:, :, None, None, :, :]
    ]  # (N, K, 3 rows, kernel, 3 cols, kernel)
    return np.einsum("nkaibj,i,j->nkab", windows.astype(np.float64), taps, taps)


def refine_dark_udp(
    coords: np.ndarray,
    heatmaps: np.ndarray,
    kernel: int = DARK_KERNEL,
    sigma: float = DARK_SIGMA,
    reference: bool = False,
) -> np.ndarray:
    """DARK sub-pixel refinement on UDP heatmap coordinates.

    Zhang et al., "Distribution-Aware Coordinate Representation for Human Pose
    Estimation", CVPR 2020, in the UDP form of Huang et al., CVPR 2020: the
    heatmap is blurred (``kernel`` taps, ``sigma``), clipped to ``[0.001, 50]``
    and log-transformed; the peak moves by ``-H^-1 g`` from the gradient and
    Hessian at the integer argmax (central differences).

    By default a Newton step is only taken where it is a step towards a maximum
    (negative-definite Hessian) and stays within one heatmap pixel;
    elsewhere the integer argmax is kept (the reference implementations take
    every step, which on flat or edge-clipped low-confidence maps can throw a
    point off the heatmap). Peaks
    closer to the heatmap edge than the blur radius (5 px) are refined less
    accurately, as in the reference, because the mirrored border biases the blur.

    Args:
        coords: ``(N, K, 2)`` integer argmax positions (x, y).
        heatmaps: ``(N, K, h, w)`` heatmaps.
        kernel: odd blur kernel size.
        sigma: blur sigma in heatmap pixels.
        reference: reproduce the reference code (mmpose ``post_dark_udp``, as
            ported to transformers) exactly: its one-diagonal mixed derivative and
            unchecked steps. The default uses the symmetric central difference, so
            decoding a mirrored heatmap gives exactly the mirrored point, and the
            step check below.

    Returns:
        ``(N, K, 2) float64`` refined coordinates.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"refine_dark_udp: kernel must be a positive odd number, got {kernel}")
    if sigma <= 0:
        raise ValueError(f"refine_dark_udp: sigma must be positive, got {sigma}")
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 4 or heatmaps.shape[:2] != np.shape(coords)[:2]:
        raise ValueError(
            f"refine_dark_udp: heatmaps {heatmaps.shape} do not match coords {np.shape(coords)}"
        )
    coords = np.asarray(coords, dtype=np.float64)
    x = coords[..., 0].astype(np.int64)
    y = coords[..., 1].astype(np.int64)
    logs = np.log(np.clip(_blurred_neighbourhood(heatmaps, x, y, kernel, sigma), 0.001, 50.0))

    def at(dy: int, dx: int) -> np.ndarray:
        return logs[:, :, dy + 1, dx + 1]

    center = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = at(0, 1) - 2 * center + at(0, -1)
    dyy = at(1, 0) - 2 * center + at(-1, 0)
    if reference:
        # The mixed derivative of the reference code (one diagonal only), and its
        # regularisation: -(H + eps I)^-1 g everywhere.
        dxy = 0.5 * (
            at(1, 1) - at(0, 1) - at(1, 0) + 2 * center - at(0, -1) - at(-1, 0) + at(-1, -1)
        )
        eps = float(np.finfo(np.float32).eps)
        dxx, dyy = dxx + eps, dyy + eps
    else:
        dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = dxx * dyy - dxy * dxy
    safe_det = np.where(np.abs(det) > 1e-30, det, 1.0)
    # Inverse of [[dxx, dxy], [dxy, dyy]] applied to the gradient.
    step_x = np.where(np.abs(det) > 1e-30, -(dyy * dx - dxy * dy) / safe_det, 0.0)
    step_y = np.where(np.abs(det) > 1e-30, -(-dxy * dx + dxx * dy) / safe_det, 0.0)
    if not reference:
        # At a true maximum the Hessian is negative definite and the step is
        # sub-pixel. Flat, multi-modal or edge-clipped low-confidence maps can ask for
        # long jumps (off the map); there the integer argmax is kept.
        ok = (det > 1e-12) & (dxx < 0) & (np.abs(step_x) <= 1.0) & (np.abs(step_y) <= 1.0)
        step_x = np.where(ok, step_x, 0.0)
        step_y = np.where(ok, step_y, 0.0)
    refined = coords.copy()
    refined[..., 0] += step_x
    refined[..., 1] += step_y
    return refined


def decode_heatmaps(
    heatmaps: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    *,
    dark: bool = True,
    dark_kernel: int = DARK_KERNEL,
    dark_sigma: float = DARK_SIGMA,
    dark_reference: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Image keypoints and scores from top-down heatmaps.

    Args:
        heatmaps: ``(N, K, h, w)`` heatmaps (already flip-averaged if flip test).
        centers: ``(N, 2)`` crop centres.
        scales: ``(N, 2)`` crop region sizes.
        dark: apply DARK refinement (else integer argmax).
        dark_kernel: DARK blur kernel size.
        dark_sigma: DARK blur sigma.
        dark_reference: reproduce the reference DARK code exactly (see
            :func:`refine_dark_udp`).

    Returns:
        ``keypoints (N, K, 2) float64`` in image pixels and ``scores (N, K) float64``
        (heatmap peak values).
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    coords, maxvals = argmax_heatmaps(heatmaps)
    if dark:
        coords = refine_dark_udp(
            coords, heatmaps, dark_kernel, dark_sigma, reference=dark_reference
        )
    h, w = heatmaps.shape[-2:]
    return heatmap_to_image(coords, centers, scales, (w, h)), maxvals


def rescore_instances(
    box_scores: np.ndarray, keypoint_scores: np.ndarray, threshold: float = RESCORE_THRESHOLD
) -> np.ndarray:
    """Instance scores as top-down evaluations compute them (SimpleBaseline, HRNet,
    ViTPose): the box score times the mean of the keypoint scores above
    ``threshold`` (0 when none is).

    A detector's box score says a person is there, not that the pose is right; the
    keypoint scores say how sure the pose model is, so the product ranks well-posed
    people above boxes around junk or badly posed people.

    Args:
        box_scores: ``(N,)``.
        keypoint_scores: ``(N, K)`` in [0, 1] (only the keypoints that are output).
        threshold: keypoint scores at or below this are ignored.

    Returns:
        ``(N,) float64``.

    Example:
        >>> rescore_instances(np.array([0.5]), np.array([[0.9, 0.7, 0.1]])).round(3)
        array([0.4])
    """
    keypoint_scores = np.asarray(keypoint_scores, dtype=np.float64)
    confident = keypoint_scores > threshold
    counts = confident.sum(axis=-1)
    total = np.where(confident, keypoint_scores, 0.0).sum(axis=-1)
    mean = np.where(counts > 0, total / np.maximum(counts, 1), 0.0)
    return np.asarray(box_scores, dtype=np.float64) * mean
