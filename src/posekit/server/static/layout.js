// Default poses for "place the template skeleton in a box".
//
// A person template is laid out from a canonical upright front-facing pose
// (the person's left side on the image's right, as in COCO), looked up by
// keypoint *name*, never by keypoint count. Templates whose names are mostly
// unknown (hands, animals, custom layouts) get a grid in template order.

// Normalised (x, y) in the box, 0..1, for common human keypoint names.
const PERSON = {
  head_top: [0.5, 0.0],
  head: [0.5, 0.04],
  nose: [0.5, 0.08],
  left_eye: [0.54, 0.055],
  right_eye: [0.46, 0.055],
  left_eye_inner: [0.52, 0.055],
  right_eye_inner: [0.48, 0.055],
  left_eye_outer: [0.56, 0.055],
  right_eye_outer: [0.44, 0.055],
  left_ear: [0.585, 0.075],
  right_ear: [0.415, 0.075],
  mouth_left: [0.53, 0.11],
  mouth_right: [0.47, 0.11],
  head_bottom: [0.5, 0.14],
  upper_neck: [0.5, 0.14],
  neck: [0.5, 0.17],
  thorax: [0.5, 0.2],
  left_shoulder: [0.66, 0.2],
  right_shoulder: [0.34, 0.2],
  left_elbow: [0.75, 0.36],
  right_elbow: [0.25, 0.36],
  left_wrist: [0.8, 0.5],
  right_wrist: [0.2, 0.5],
  left_pinky: [0.83, 0.55],
  right_pinky: [0.17, 0.55],
  left_index: [0.81, 0.56],
  right_index: [0.19, 0.56],
  left_thumb: [0.78, 0.54],
  right_thumb: [0.22, 0.54],
  spine: [0.5, 0.36],
  pelvis: [0.5, 0.52],
  hip: [0.5, 0.52],
  left_hip: [0.6, 0.52],
  right_hip: [0.4, 0.52],
  left_knee: [0.61, 0.74],
  right_knee: [0.39, 0.74],
  left_ankle: [0.62, 0.94],
  right_ankle: [0.38, 0.94],
  left_heel: [0.61, 0.97],
  right_heel: [0.39, 0.97],
  left_big_toe: [0.66, 1.0],
  right_big_toe: [0.34, 1.0],
  left_small_toe: [0.69, 0.99],
  right_small_toe: [0.31, 0.99],
  left_foot_index: [0.67, 1.0],
  right_foot_index: [0.33, 1.0],
};

const normalise = (name) => String(name).toLowerCase().replace(/[\s-]+/g, "_");

/**
 * Normalised default positions for a template's keypoints.
 * @param {string[]} names keypoint names in template order
 * @returns {{points: number[][], kind: "person"|"grid"}} points: (K, 2) in 0..1
 */
export function defaultLayout(names) {
  const known = names.map((n) => PERSON[normalise(n)]);
  const hits = known.filter(Boolean).length;
  if (names.length > 0 && hits / names.length >= 0.6) {
    // Unknown names in a mostly-human template go on a row under the feet
    // region so they are visible and easy to drag into place.
    const missing = known.map((p, i) => (p ? -1 : i)).filter((i) => i >= 0);
    const points = known.map((p, i) => {
      if (p) return [p[0], p[1]];
      const slot = missing.indexOf(i);
      return [(slot + 1) / (missing.length + 1), 0.85];
    });
    return { points, kind: "person" };
  }
  const columns = Math.max(1, Math.ceil(Math.sqrt(names.length)));
  const rows = Math.max(1, Math.ceil(names.length / columns));
  const points = names.map((_, i) => [
    (0.5 + (i % columns)) / columns,
    (0.5 + Math.floor(i / columns)) / rows,
  ]);
  return { points, kind: "grid" };
}

/**
 * Absolute keypoints for a template laid out in a box.
 * @param {string[]} names
 * @param {number[]} box [x1, y1, x2, y2] image pixels
 * @returns {number[][]} (K, 2) image pixels
 */
export function layoutInBox(names, box) {
  const [x1, y1, x2, y2] = box;
  const { points } = defaultLayout(names);
  return points.map(([u, v]) => [x1 + u * (x2 - x1), y1 + v * (y2 - y1)]);
}
