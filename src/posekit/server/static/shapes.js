// What is drawn for one instance, as ready-made paths and point markers, and the
// signature of everything that changes those pixels.
//
// Each instance gets its own Path2D objects (box, one limb path per template
// colour, occluded limbs, markers), built once per look and view and reused by
// every frame that redraws or repairs it. Keeping paths per instance, never one
// path across instances, is what makes a locally repaired layer pixel-exact: Skia
// picks its anti-aliasing rasterizer (analytic or supersampled) from a path's
// size and number of points, so the same limb stroked as part of "all 100
// people" or as part of "the 6 people around the repaired rectangle" came out
// with coverage differing by a few levels along edges. A path of one instance is
// the same path in both cases (and render.js never rasterizes them under a clip,
// which would move edge ends too). Point markers are 1:1 copies of pre-drawn
// sprites (or whole-pixel squares) at whole device pixels, so they are exact too.
//
// Level of detail: when an instance is small on screen for its number of
// keypoints (less than COMPACT_SPACING CSS px of box side per keypoint, e.g.
// COCO-WholeBody people at a fit zoom of a crowd), markers are small squares in
// one fill per colour and limbs 1 px wide: the ringed 8 px markers would only
// cover each other there, and cost ten times more to draw. The active instance is
// always drawn in full detail.

const GREY = "rgb(150,150,150)";
export const COLORS = {
  manual: "#4fc3f7",
  accepted: "#66bb6a",
  predicted: "#ffb300",
  rejected: "#e57373",
  selected: "#ffeb3b",
  lowScore: "#ff1744",
  ghost: "rgba(200,220,255,0.9)",
};
export const LOW_SCORE = 0.5;
export const POINT_RADIUS = 4;
const SPRITE_SIZE = 2 * (POINT_RADIUS + 6);
const COMPACT_SPACING = 12;
const TAU = Math.PI * 2;
// Limbs and boxes of compact instances: 1 device px lines are drawn as hairlines, the cheapest.
const THIN = 1;
// Room around an instance's points and box for what is drawn outside them, in
// CSS px: the widest point marker (the low-score ring: radius POINT_RADIUS + 3.5,
// line width 2), half a pixel for snapping sprites to device pixels and one for
// anti-aliasing; box and limb lines reach less far.
export const DRAW_MARGIN = POINT_RADIUS + 3.5 + 1 + 1.5;
// Point markers by kind, colour, dpr and ring, shared by every Renderer so that
// opening the next item does not draw them again.
const SPRITES = new Map();
// Colour groups per template object.
const STYLES = new WeakMap();

const rgb = (c, fallback) => (c ? `rgb(${c[0]},${c[1]},${c[2]})` : fallback);

/**
 * Add the dashes of line a-b to `path` as plain segments (the pattern restarts
 * at a), so that where a dash lies depends on nothing but the line: Skia's own
 * dashing starts from the part of a path inside the drawing bounds.
 */
function dashTo(path, ax, ay, bx, by, on, off) {
  const length = Math.hypot(bx - ax, by - ay);
  if (!length) return;
  const ux = (bx - ax) / length;
  const uy = (by - ay) / length;
  for (let d = 0; d < length; d += on + off) {
    const e = Math.min(length, d + on);
    path.moveTo(ax + ux * d, ay + uy * d);
    path.lineTo(ax + ux * e, ay + uy * e);
  }
}

/** Visible bounding box of an instance in image px: its box, else its labeled points. */
export function instanceBounds(data) {
  if (data.box) return data.box;
  let x1 = Infinity;
  let y1 = Infinity;
  let x2 = -Infinity;
  let y2 = -Infinity;
  data.keypoints.forEach(([x, y], k) => {
    if (!data.visibility[k]) return;
    x1 = Math.min(x1, x);
    y1 = Math.min(y1, y);
    x2 = Math.max(x2, x);
    y2 = Math.max(y2, y);
  });
  return x1 <= x2 ? [x1, y1, x2, y2] : null;
}

/**
 * Everything about an instance's data that changes its pixels, and the image-px
 * bounds of what is drawn for it (box and labeled points; null when nothing is).
 * The numbers go into a typed array, compared element by element: turning
 * 100 x 133 coordinates into strings every frame would cost milliseconds.
 * @returns {{text: string, nums: Float64Array, bounds: number[]|null}}
 */
export function describe(data, prefix) {
  const { keypoints, visibility, box } = data;
  const K = keypoints.length;
  const nums = new Float64Array(4 + 3 * K);
  let x1 = Infinity;
  let y1 = Infinity;
  let x2 = -Infinity;
  let y2 = -Infinity;
  if (box) {
    [x1, y1, x2, y2] = box;
    nums.set(box);
  }
  for (let k = 0, i = 4; k < K; k++, i += 3) {
    const v = visibility[k];
    nums[i] = v;
    if (!v) continue;
    const x = keypoints[k][0];
    const y = keypoints[k][1];
    nums[i + 1] = x;
    nums[i + 2] = y;
    if (x < x1) x1 = x;
    if (y < y1) y1 = y;
    if (x > x2) x2 = x;
    if (y > y2) y2 = y;
  }
  let low = "";
  if (data.status === "predicted" && data.keypoint_scores) {
    low = data.keypoint_scores.map((s) => (s !== null && s < LOW_SCORE ? 1 : 0)).join("");
  }
  return {
    text: `${prefix}|${data.status}|${data.source}|${box ? 1 : 0}|${low}`,
    nums,
    bounds: x1 <= x2 && y1 <= y2 ? [x1, y1, x2, y2] : null,
  };
}

/** Whether two describe() results draw the same pixels. */
export function sameLook(a, b) {
  if (a.text !== b.text || a.nums.length !== b.nums.length) return false;
  for (let i = 0; i < a.nums.length; i++) {
    if (a.nums[i] !== b.nums[i]) return false;
  }
  return true;
}

/** Colour groups of a template: limb indices per colour, the colour of each point. */
export function templateStyle(template) {
  let style = STYLES.get(template);
  if (style) return style;
  const byColor = (colors, count, fallback) => {
    const map = new Map();
    for (let i = 0; i < count; i++) {
      const color = rgb(colors && colors[i], fallback);
      if (!map.has(color)) map.set(color, []);
      map.get(color).push(i);
    }
    return [...map];
  };
  const points = byColor(template.keypoint_colors, template.keypoints.length, "#fff");
  const pointGroup = new Int32Array(template.keypoints.length);
  points.forEach(([, list], g) => list.forEach((k) => (pointGroup[k] = g)));
  style = {
    edges: byColor(template.edge_colors, template.edges.length, COLORS.manual),
    points,
    pointGroup,
    pointColor: template.keypoints.map((_, k) =>
      rgb(template.keypoint_colors && template.keypoint_colors[k], "#fff"),
    ),
  };
  STYLES.set(template, style);
  return style;
}

/**
 * A pre-drawn point marker at device resolution, `canvas.width` device px wide,
 * centred on device pixel (width >> 1): kind "visible" (in `color`) or
 * "occluded", with the red low-score ring on top when `low`, so a flagged point
 * is one drawImage.
 */
function sprite(kind, color, dpr, low = false) {
  const id = `${kind}|${color}|${dpr}|${low ? 1 : 0}`;
  let canvas = SPRITES.get(id);
  if (canvas) return canvas;
  canvas = document.createElement("canvas");
  canvas.width = canvas.height = Math.ceil(SPRITE_SIZE * dpr) | 1;
  const ctx = canvas.getContext("2d");
  const c = (canvas.width >> 1) + 0.5;
  ctx.setTransform(dpr, 0, 0, dpr, c, c);
  ctx.beginPath();
  ctx.arc(0, 0, POINT_RADIUS, 0, TAU);
  ctx.fillStyle = kind === "visible" ? color : "rgba(150,150,150,0.6)";
  ctx.fill();
  ctx.lineWidth = 1;
  if (kind === "occluded") ctx.setLineDash([2, 2]);
  ctx.strokeStyle = kind === "visible" ? "#111" : "#ddd";
  ctx.stroke();
  if (low) {
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.arc(0, 0, POINT_RADIUS + 3.5, 0, TAU);
    ctx.lineWidth = 2;
    ctx.strokeStyle = COLORS.lowScore;
    ctx.stroke();
  }
  SPRITES.set(id, canvas);
  return canvas;
}

/** The markers of a template's points at a dpr: per point [plain, low-score]. */
function markers(template, dpr) {
  const style = templateStyle(template);
  const id = `markers|${dpr}`;
  if (!style[id]) {
    style[id] = {
      visible: style.pointColor.map((color) => [
        sprite("visible", color, dpr),
        sprite("visible", color, dpr, true),
      ]),
      occluded: [sprite("occluded", null, dpr), sprite("occluded", null, dpr, true)],
    };
  }
  return style[id];
}

function boxColor(data, active) {
  if (active) return COLORS.selected;
  if (data.status === "rejected") return COLORS.rejected;
  if (data.status === "predicted") return COLORS.predicted;
  return data.source === "manual" ? COLORS.manual : COLORS.accepted;
}

/**
 * The paths and markers of one instance at the scene's view. Coordinates are in
 * device px (drawn with an identity transform); line widths are in device px.
 * @param {Object} data the instance fields
 * @param {Object} scene see AnnotationView.scene()
 * @param {{active: boolean, chosen: Set<number>|undefined}} options
 */
export function buildShape(data, scene, { active = false, chosen = undefined } = {}) {
  const { view, template, dpr } = scene;
  const style = templateStyle(template);
  const sx = view.scale * dpr;
  const ox = view.tx * dpr;
  const oy = view.ty * dpr;
  const { keypoints: kps, visibility: vis, keypoint_scores: scores, status } = data;
  const K = kps.length;
  const bounds = instanceBounds(data);
  let compact = false;
  if (!active && bounds && K > 1) {
    const area = (bounds[2] - bounds[0]) * (bounds[3] - bounds[1]) * view.scale * view.scale;
    compact = Math.sqrt(area / K) < COMPACT_SPACING;
  }
  const shape = { compact, rejected: status === "rejected", box: null, tint: null };
  if (bounds) {
    const x1 = bounds[0] * sx + ox;
    const y1 = bounds[1] * sx + oy;
    const x2 = bounds[2] * sx + ox;
    const y2 = bounds[3] * sx + oy;
    const dashed = status === "predicted" || status === "rejected" || !data.box;
    const path = new Path2D();
    if (dashed) {
      const corners = [x1, y1, x2, y1, x2, y2, x1, y2, x1, y1];
      for (let i = 0; i < 8; i += 2) {
        const [ax, ay, bx, by] = corners.slice(i, i + 4);
        dashTo(path, ax, ay, bx, by, 6 * dpr, 4 * dpr);
      }
    } else {
      path.rect(x1, y1, x2 - x1, y2 - y1);
    }
    shape.box = {
      path,
      color: boxColor(data, active),
      width: (active ? 2.5 : compact ? THIN : 1.5) * dpr,
    };
    // A light tint inside the box marks machine output still awaiting review.
    if (status === "predicted") {
      shape.tint = new Path2D();
      shape.tint.rect(x1, y1, x2 - x1, y2 - y1);
    }
  }
  // Limbs: visible ones in the template colour; a limb touching an occluded
  // point is grey and dashed.
  const edges = template.edges;
  shape.edges = style.edges.map(([, list]) => {
    let path = null;
    for (const e of list) {
      const [a, b] = edges[e];
      if (vis[a] !== 2 || vis[b] !== 2) continue;
      path = path || new Path2D();
      path.moveTo(kps[a][0] * sx + ox, kps[a][1] * sx + oy);
      path.lineTo(kps[b][0] * sx + ox, kps[b][1] * sx + oy);
    }
    return path;
  });
  shape.edgeWidth = (active ? 3 : compact ? THIN : 2) * dpr;
  let grey = null;
  for (const [a, b] of edges) {
    if (!vis[a] || !vis[b] || (vis[a] === 2 && vis[b] === 2)) continue;
    grey = grey || new Path2D();
    const [ax, ay] = kps[a];
    const [bx, by] = kps[b];
    dashTo(grey, ax * sx + ox, ay * sx + oy, bx * sx + ox, by * sx + oy, 5 * dpr, 4 * dpr);
  }
  shape.grey = grey;

  const flagLow = status === "predicted" && scores;
  let rings = null;
  if (compact) {
    // One path per colour (point colours, then occluded, then low score) of
    // squares on whole device pixels: no anti-aliasing, one fill each.
    const side = Math.max(3, Math.round(3 * dpr));
    const half = side >> 1;
    const groups = style.points.length;
    const dots = new Array(groups + 2).fill(null);
    for (let k = 0; k < K; k++) {
      if (!vis[k]) continue;
      const low = flagLow && scores[k] !== null && scores[k] < LOW_SCORE;
      const g = low ? groups + 1 : vis[k] === 2 ? style.pointGroup[k] : groups;
      const path = (dots[g] = dots[g] || new Path2D());
      path.rect(
        Math.round(kps[k][0] * sx + ox) - half,
        Math.round(kps[k][1] * sx + oy) - half,
        side,
        side,
      );
    }
    shape.dots = dots;
  } else {
    // Point markers are 1:1 copies of small pre-drawn sprites: on a software
    // canvas one drawImage is far cheaper than rasterizing an anti-aliased arc.
    const marks = markers(template, dpr);
    const list = [];
    const at = [];
    for (let k = 0; k < K; k++) {
      if (!vis[k]) continue;
      const low = flagLow && scores[k] !== null && scores[k] < LOW_SCORE ? 1 : 0;
      const image = (vis[k] === 2 ? marks.visible[k] : marks.occluded)[low];
      const half = image.width >> 1;
      list.push(image);
      at.push(Math.round(kps[k][0] * sx + ox) - half, Math.round(kps[k][1] * sx + oy) - half);
    }
    shape.sprites = list;
    shape.at = at;
  }
  if (chosen && chosen.size) {
    const r = (POINT_RADIUS + 2.5) * dpr;
    for (const k of chosen) {
      if (!vis[k]) continue;
      const x = Math.round(kps[k][0] * sx + ox) + 0.5;
      const y = Math.round(kps[k][1] * sx + oy) + 0.5;
      rings = rings || new Path2D();
      rings.moveTo(x + r, y);
      rings.arc(x, y, r, 0, TAU);
    }
  }
  shape.rings = rings;
  return shape;
}

/** Whether device rect [x, y, w, h] overlaps any of `rects`. */
function touches(x, y, w, h, rects) {
  for (const r of rects) {
    if (x < r[0] + r[2] && r[0] < x + w && y < r[1] + r[3] && r[1] < y + h) return true;
  }
  return false;
}

/**
 * Draw instance shapes one after the other, each complete: tint, box, limbs by
 * colour, occluded limbs, markers, selection rings. Every call draws one
 * instance's own path, so drawing a subset of the shapes in the same order (a
 * repair), or the shapes in slices over several frames, puts exactly the same
 * pixels where they are drawn. Sprites outside `rects` (device px; null:
 * everywhere) are skipped: they could not reach the repaired rectangles.
 */
export function drawShapes(ctx, scene, shapes, rects = null) {
  if (!shapes.length) return;
  const { dpr, template } = scene;
  const style = templateStyle(template);
  const groups = style.points.length;
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  for (const s of shapes) {
    ctx.globalAlpha = s.rejected ? 0.35 : 1;
    if (s.tint) {
      ctx.fillStyle = "rgba(255,179,0,0.07)";
      ctx.fill(s.tint);
    }
    if (s.box) {
      ctx.strokeStyle = s.box.color;
      ctx.lineWidth = s.box.width;
      ctx.stroke(s.box.path);
    }
    ctx.lineWidth = s.edgeWidth;
    for (let g = 0; g < s.edges.length; g++) {
      if (!s.edges[g]) continue;
      ctx.strokeStyle = style.edges[g][0];
      ctx.stroke(s.edges[g]);
    }
    if (s.grey) {
      ctx.strokeStyle = GREY;
      ctx.stroke(s.grey);
    }
    if (s.compact) {
      for (let g = 0; g < s.dots.length; g++) {
        if (!s.dots[g]) continue;
        ctx.fillStyle = g < groups ? style.points[g][0] : g === groups ? GREY : COLORS.lowScore;
        ctx.fill(s.dots[g]);
      }
    } else {
      const { sprites, at } = s;
      for (let i = 0; i < sprites.length; i++) {
        const image = sprites[i];
        const x = at[2 * i];
        const y = at[2 * i + 1];
        if (rects && !touches(x, y, image.width, image.height, rects)) continue;
        ctx.drawImage(image, x, y);
      }
    }
    if (s.rings) {
      ctx.lineWidth = 2 * dpr;
      ctx.strokeStyle = COLORS.selected;
      ctx.stroke(s.rings);
    }
  }
  ctx.restore();
}

/** A conflict ghost: the server's version of an instance, faint and dashed. */
export function drawGhost(ctx, scene, inst) {
  const { view, template } = scene;
  const sx = (x) => x * view.scale + view.tx;
  const sy = (y) => y * view.scale + view.ty;
  ctx.save();
  ctx.setTransform(scene.dpr, 0, 0, scene.dpr, 0, 0);
  ctx.globalAlpha = 0.55;
  ctx.strokeStyle = COLORS.ghost;
  ctx.fillStyle = COLORS.ghost;
  ctx.lineWidth = 2;
  const limbs = new Path2D();
  for (const [a, b] of template.edges) {
    if (!inst.visibility[a] || !inst.visibility[b]) continue;
    const [ax, ay] = inst.keypoints[a];
    const [bx, by] = inst.keypoints[b];
    dashTo(limbs, sx(ax), sy(ay), sx(bx), sy(by), 3, 3);
  }
  ctx.stroke(limbs);
  ctx.beginPath();
  inst.keypoints.forEach(([x, y], k) => {
    if (!inst.visibility[k]) return;
    ctx.moveTo(sx(x) + 3, sy(y));
    ctx.arc(sx(x), sy(y), 3, 0, Math.PI * 2);
  });
  ctx.fill();
  ctx.restore();
}
