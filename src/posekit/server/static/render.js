// Canvas drawing of the annotation scene. All drawing happens in screen space
// (image coordinates are transformed by hand) so that line widths and point
// radii stay constant at every zoom level.
//
// Two offscreen layers keep frames cheap with dozens of people on a software
// canvas:
//   image layer   background + the scaled image; redrawn only when the view,
//                 the canvas size or the image change (zoom, pan, resize, open)
//   scene layer   image layer + every instance except the ones being dragged
// The scene layer remembers, per instance, a signature of what it drew there and
// the device-pixel rectangle it covered. Each frame compares that with the
// scene: only the rectangles of instances that changed (selected, edited, picked
// up or put down by a drag) are repaired, by copying the image layer back and
// redrawing, clipped, every instance that touches them, in the usual order. So
// the frame that starts a drag (which both selects an instance and lifts it out
// of the layer) and the frame that ends it cost about as much as the instances
// around the dragged one, not a redraw of the image and all the people.

const GREY = "rgb(150,150,150)";
const COLORS = {
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
// Point markers by kind, colour, dpr and ring, shared by every Renderer so that
// opening the next item does not draw them again.
const SPRITES = new Map();

const rgb = (c, fallback) => (c ? `rgb(${c[0]},${c[1]},${c[2]})` : fallback);

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

// Room around an instance's points and box for what is drawn outside them, in
// CSS px: the widest point marker (the low-score ring: radius POINT_RADIUS + 3.5,
// line width 2), half a pixel for snapping sprites to device pixels and one for
// anti-aliasing; box and limb lines reach less far.
const DRAW_MARGIN = POINT_RADIUS + 3.5 + 1 + 1.5;

/**
 * Everything about an instance's data that changes its pixels, and the image-px
 * bounds of what is drawn for it (box and labeled points; null when nothing is).
 * The numbers go into a typed array, compared element by element: turning
 * 50 x 17 coordinates into strings every frame would cost about a millisecond.
 * @returns {{text: string, nums: Float64Array, bounds: number[]|null}}
 */
function describe(data, prefix) {
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
function sameLook(a, b) {
  if (a.text !== b.text || a.nums.length !== b.nums.length) return false;
  for (let i = 0; i < a.nums.length; i++) {
    if (a.nums[i] !== b.nums[i]) return false;
  }
  return true;
}

/** Image-px bounds -> [x, y, w, h] in whole device px, widened by DRAW_MARGIN. */
function deviceRect(bounds, view, dpr) {
  if (!bounds) return null;
  const { scale, tx, ty } = view;
  const x1 = Math.floor((bounds[0] * scale + tx - DRAW_MARGIN) * dpr);
  const y1 = Math.floor((bounds[1] * scale + ty - DRAW_MARGIN) * dpr);
  const x2 = Math.ceil((bounds[2] * scale + tx + DRAW_MARGIN) * dpr);
  const y2 = Math.ceil((bounds[3] * scale + ty + DRAW_MARGIN) * dpr);
  return [x1, y1, x2 - x1, y2 - y1];
}

/** A device rect cut to the canvas, or null when nothing of it is on the canvas. */
function clipRect([x, y, w, h], width, height) {
  const x1 = Math.max(0, x);
  const y1 = Math.max(0, y);
  const x2 = Math.min(width, x + w);
  const y2 = Math.min(height, y + h);
  return x2 > x1 && y2 > y1 ? [x1, y1, x2 - x1, y2 - y1] : null;
}

const overlaps = (a, b) =>
  a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];

export class Renderer {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.imageLayer = document.createElement("canvas");
    this.imageCtx = this.imageLayer.getContext("2d", { alpha: false });
    this.layer = document.createElement("canvas");
    this.layerCtx = this.layer.getContext("2d", { alpha: false });
    this.reset();
  }

  /** Forget both cached layers: the next frame redraws everything (benchmarks use this). */
  reset() {
    this.imageStamp = null;
    this.imageFor = null;
    this.layerEntries = null; // Map: entry id -> {look, rect, rec, ghost} drawn in the layer
    this.layerTemplate = null;
  }

  /**
   * Draw one frame.
   * @param {Object} scene see AnnotationView.scene()
   */
  render(scene) {
    const { canvas, ctx } = this;
    const { dpr, view } = scene;
    const width = canvas.width;
    const height = canvas.height;
    for (const layer of [this.imageLayer, this.layer]) {
      if (layer.width !== width || layer.height !== height) {
        layer.width = width;
        layer.height = height;
        this.reset();
      }
    }
    const stamp = [width, height, dpr, view.scale, view.tx, view.ty].join("|");
    if (this.imageStamp !== stamp || this.imageFor !== scene.image) {
      this.drawImageLayer(scene);
      this.imageStamp = stamp;
      this.imageFor = scene.image;
      this.layerEntries = null;
    }
    if (this.layerTemplate !== scene.template) this.layerEntries = null;
    this.updateLayer(scene);

    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.layer, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const dynamic = scene.dynamicKeys;
    if (dynamic && dynamic.size) {
      for (const rec of scene.records) {
        if (dynamic.has(rec.key)) this.drawInstance(ctx, scene, rec);
      }
    }
    this.drawOverlays(ctx, scene);
  }

  drawImageLayer(scene) {
    const { dpr, view, image } = scene;
    const ctx = this.imageCtx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#1e1e1e";
    ctx.fillRect(0, 0, this.imageLayer.width, this.imageLayer.height);
    if (!image) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.imageSmoothingEnabled = view.scale < 2;
    ctx.drawImage(
      image,
      view.tx,
      view.ty,
      scene.imageWidth * view.scale,
      scene.imageHeight * view.scale,
    );
  }

  /**
   * What the scene layer should hold: one entry per conflict ghost and per
   * instance not being dragged, with a signature of everything that changes its
   * pixels and the device-pixel rectangle those pixels can reach.
   */
  layerContent(scene) {
    const { view, dpr, selected, activeKey } = scene;
    const dynamic = scene.dynamicKeys;
    const entries = new Map();
    for (const rec of scene.records) {
      const ghost = rec.conflict && rec.conflict.current;
      if (ghost) {
        const look = describe(ghost, "ghost");
        entries.set(`g${rec.key}`, { look, rect: deviceRect(look.bounds, view, dpr), rec, ghost });
      }
      if (dynamic && dynamic.has(rec.key)) continue;
      const chosen = selected.get(rec.key);
      const prefix = `${rec.key === activeKey ? 1 : 0}|${chosen ? [...chosen].join(",") : ""}`;
      const look = describe(rec.data, prefix);
      entries.set(rec.key, { look, rect: deviceRect(look.bounds, view, dpr), rec, ghost: null });
    }
    return entries;
  }

  /** Bring the scene layer up to date: repair changed rectangles, or redraw it all. */
  updateLayer(scene) {
    const entries = this.layerContent(scene);
    const old = this.layerEntries;
    const width = this.layer.width;
    const height = this.layer.height;
    let rects = null;
    if (old) {
      rects = [];
      let area = 0;
      const changed = (a, b) => {
        for (const entry of [a, b]) {
          if (!entry || !entry.rect) continue;
          const clipped = clipRect(entry.rect, width, height);
          if (!clipped) continue;
          rects.push(clipped);
          area += clipped[2] * clipped[3];
        }
      };
      for (const [id, entry] of entries) {
        const before = old.get(id);
        if (!before || !sameLook(before.look, entry.look)) changed(before, entry);
      }
      for (const [id, before] of old) if (!entries.has(id)) changed(before, null);
      // Repairing most of the canvas costs more than redrawing it in one go.
      if (area > 0.5 * width * height) rects = null;
    }
    const ctx = this.layerCtx;
    if (!rects) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.drawImage(this.imageLayer, 0, 0);
      this.drawContent(ctx, scene, [...entries.values()]);
    } else if (rects.length) {
      ctx.save();
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.beginPath();
      for (const [x, y, w, h] of rects) {
        // A 1:1 copy at whole device pixels: exactly the pixels of the image layer.
        ctx.drawImage(this.imageLayer, x, y, w, h, x, y, w, h);
        ctx.rect(x, y, w, h);
      }
      ctx.clip();
      const touching = [...entries.values()].filter(
        (entry) => entry.rect && rects.some((r) => overlaps(entry.rect, r)),
      );
      this.drawContent(ctx, scene, touching);
      ctx.restore();
    }
    this.layerEntries = entries;
    this.layerTemplate = scene.template;
  }

  /**
   * Draw ghosts, then rejected instances (faint), then the rest, the active
   * instance on top: the same order for a whole layer and for a repaired part.
   */
  drawContent(ctx, scene, entries) {
    ctx.setTransform(scene.dpr, 0, 0, scene.dpr, 0, 0);
    const rejected = [];
    const normal = [];
    let active = null;
    for (const entry of entries) {
      if (entry.ghost) this.drawGhost(ctx, scene, entry.ghost);
    }
    for (const { rec, ghost } of entries) {
      if (ghost) continue;
      if (rec.key === scene.activeKey) active = rec;
      else if (rec.data.status === "rejected") rejected.push(rec);
      else normal.push(rec);
    }
    this.drawBatch(ctx, scene, rejected);
    this.drawBatch(ctx, scene, normal);
    if (active) this.drawInstance(ctx, scene, active);
  }

  drawGhost(ctx, scene, inst) {
    const { view, template } = scene;
    const sx = (x) => x * view.scale + view.tx;
    const sy = (y) => y * view.scale + view.ty;
    ctx.save();
    ctx.globalAlpha = 0.55;
    ctx.strokeStyle = COLORS.ghost;
    ctx.fillStyle = COLORS.ghost;
    ctx.lineWidth = 2;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    for (const [a, b] of template.edges) {
      if (!inst.visibility[a] || !inst.visibility[b]) continue;
      ctx.moveTo(sx(inst.keypoints[a][0]), sy(inst.keypoints[a][1]));
      ctx.lineTo(sx(inst.keypoints[b][0]), sy(inst.keypoints[b][1]));
    }
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.beginPath();
    inst.keypoints.forEach(([x, y], k) => {
      if (!inst.visibility[k]) return;
      ctx.moveTo(sx(x) + 3, sy(y));
      ctx.arc(sx(x), sy(y), 3, 0, Math.PI * 2);
    });
    ctx.fill();
    ctx.restore();
  }

  /**
   * A pre-drawn point marker (CSS px size SPRITE_SIZE, drawn at device
   * resolution): kind "visible" (in `color`) or "occluded", with the red
   * low-score ring on top when `low`, so a flagged point is one drawImage.
   */
  sprite(kind, color, dpr, low = false) {
    const id = `${kind}|${color}|${dpr}|${low ? 1 : 0}`;
    let canvas = SPRITES.get(id);
    if (canvas) return canvas;
    canvas = document.createElement("canvas");
    canvas.width = canvas.height = Math.ceil(SPRITE_SIZE * dpr);
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    const c = SPRITE_SIZE / 2;
    ctx.beginPath();
    ctx.arc(c, c, POINT_RADIUS, 0, Math.PI * 2);
    ctx.fillStyle = kind === "visible" ? color : "rgba(150,150,150,0.6)";
    ctx.fill();
    ctx.lineWidth = 1;
    if (kind === "occluded") ctx.setLineDash([2, 2]);
    ctx.strokeStyle = kind === "visible" ? "#111" : "#ddd";
    ctx.stroke();
    if (low) {
      ctx.setLineDash([]);
      ctx.beginPath();
      ctx.arc(c, c, POINT_RADIUS + 3.5, 0, Math.PI * 2);
      ctx.lineWidth = 2;
      ctx.strokeStyle = COLORS.lowScore;
      ctx.stroke();
    }
    SPRITES.set(id, canvas);
    return canvas;
  }

  /** Colour groups of the template, computed once per template object. */
  groups(template) {
    if (this.groupsFor === template) return this.groupCache;
    const byColor = (colors, count, fallback) => {
      const map = new Map();
      for (let i = 0; i < count; i++) {
        const color = rgb(colors && colors[i], fallback);
        if (!map.has(color)) map.set(color, []);
        map.get(color).push(i);
      }
      return [...map];
    };
    this.groupCache = {
      edges: byColor(template.edge_colors, template.edges.length, COLORS.manual),
      points: byColor(template.keypoint_colors, template.keypoints.length, "#fff"),
      pointColor: template.keypoints.map((_, k) =>
        rgb(template.keypoint_colors && template.keypoint_colors[k], "#fff"),
      ),
    };
    this.groupsFor = template;
    return this.groupCache;
  }

  /** Draw one instance (used for the few instances that change while dragging). */
  drawInstance(ctx, scene, rec) {
    this.drawBatch(ctx, scene, [rec], rec.key === scene.activeKey);
  }

  /**
   * Draw many instances with one path per colour and style: software canvases
   * pay per stroke/fill call, so batching keeps 50 people x 17 points cheap.
   */
  drawBatch(ctx, scene, recs, active = false) {
    if (!recs.length) return;
    const { view, template, selected } = scene;
    const { scale, tx, ty } = view;
    const groups = this.groups(template);
    const edges = template.edges;
    ctx.save();
    if (recs[0].data.status === "rejected") ctx.globalAlpha = 0.35;

    // Boxes, grouped by colour and dash style.
    const boxes = new Map();
    const tint = [];
    for (const rec of recs) {
      const data = rec.data;
      const bounds = instanceBounds(data);
      if (!bounds) continue;
      const status = data.status;
      const dashed = status === "predicted" || status === "rejected" || !data.box;
      const color = active
        ? COLORS.selected
        : status === "rejected"
          ? COLORS.rejected
          : status === "predicted"
            ? COLORS.predicted
            : data.source === "manual"
              ? COLORS.manual
              : COLORS.accepted;
      const style = `${color}|${dashed ? 1 : 0}`;
      if (!boxes.has(style)) boxes.set(style, []);
      boxes.get(style).push(bounds);
      // A light tint inside the box marks machine output still awaiting review.
      if (status === "predicted") tint.push(bounds);
    }
    if (tint.length) {
      ctx.fillStyle = "rgba(255,179,0,0.07)";
      ctx.beginPath();
      for (const [x1, y1, x2, y2] of tint) {
        ctx.rect(x1 * scale + tx, y1 * scale + ty, (x2 - x1) * scale, (y2 - y1) * scale);
      }
      ctx.fill();
    }
    ctx.lineWidth = active ? 2.5 : 1.5;
    for (const [style, list] of boxes) {
      const [color, dashed] = style.split("|");
      ctx.strokeStyle = color;
      ctx.setLineDash(dashed === "1" ? [6, 4] : []);
      ctx.beginPath();
      for (const [x1, y1, x2, y2] of list) {
        ctx.rect(x1 * scale + tx, y1 * scale + ty, (x2 - x1) * scale, (y2 - y1) * scale);
      }
      ctx.stroke();
    }

    // Limbs: visible ones in the template colour; a limb touching an occluded
    // point is grey and dashed.
    ctx.lineWidth = active ? 3 : 2;
    ctx.setLineDash([]);
    for (const [color, list] of groups.edges) {
      ctx.strokeStyle = color;
      ctx.beginPath();
      for (const rec of recs) {
        const kps = rec.data.keypoints;
        const vis = rec.data.visibility;
        for (const e of list) {
          const [a, b] = edges[e];
          if (vis[a] !== 2 || vis[b] !== 2) continue;
          ctx.moveTo(kps[a][0] * scale + tx, kps[a][1] * scale + ty);
          ctx.lineTo(kps[b][0] * scale + tx, kps[b][1] * scale + ty);
        }
      }
      ctx.stroke();
    }
    ctx.strokeStyle = GREY;
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    for (const rec of recs) {
      const kps = rec.data.keypoints;
      const vis = rec.data.visibility;
      for (const [a, b] of edges) {
        if (!vis[a] || !vis[b] || (vis[a] === 2 && vis[b] === 2)) continue;
        ctx.moveTo(kps[a][0] * scale + tx, kps[a][1] * scale + ty);
        ctx.lineTo(kps[b][0] * scale + tx, kps[b][1] * scale + ty);
      }
    }
    ctx.stroke();

    // Points are blitted from small pre-drawn sprites: on a software canvas one
    // drawImage is far cheaper than rasterizing an anti-aliased arc.
    const TAU = Math.PI * 2;
    const dpr = scene.dpr;
    const rings = new Path2D();
    const pointColors = groups.pointColor;
    // Markers per keypoint index, [plain, with low-score ring], looked up once.
    const markers = pointColors.map((color) => [
      this.sprite("visible", color, dpr),
      this.sprite("visible", color, dpr, true),
    ]);
    const occluded = [this.sprite("occluded", null, dpr), this.sprite("occluded", null, dpr, true)];
    const half = SPRITE_SIZE / 2;
    for (const rec of recs) {
      const { keypoints: kps, visibility: vis, keypoint_scores: scores, status } = rec.data;
      const flagLow = status === "predicted" && scores;
      const chosen = selected.get(rec.key);
      for (let k = 0; k < kps.length; k++) {
        if (!vis[k]) continue;
        const x = Math.round((kps[k][0] * scale + tx) * dpr) / dpr;
        const y = Math.round((kps[k][1] * scale + ty) * dpr) / dpr;
        const low = flagLow && scores[k] !== null && scores[k] < LOW_SCORE ? 1 : 0;
        const sprite = (vis[k] === 2 ? markers[k] : occluded)[low];
        ctx.drawImage(sprite, x - half, y - half, SPRITE_SIZE, SPRITE_SIZE);
        if (chosen && chosen.has(k)) {
          rings.moveTo(x + POINT_RADIUS + 2.5, y);
          rings.arc(x, y, POINT_RADIUS + 2.5, 0, TAU);
        }
      }
    }
    ctx.setLineDash([]);
    ctx.lineWidth = 2;
    ctx.strokeStyle = COLORS.selected;
    ctx.stroke(rings);
    ctx.restore();
  }

  drawOverlays(ctx, scene) {
    const { view } = scene;
    ctx.save();
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = 1.5;
    if (scene.draftBox) {
      const [x1, y1, x2, y2] = scene.draftBox;
      ctx.strokeStyle = COLORS.selected;
      ctx.strokeRect(
        x1 * view.scale + view.tx,
        y1 * view.scale + view.ty,
        (x2 - x1) * view.scale,
        (y2 - y1) * view.scale,
      );
    }
    if (scene.rubber) {
      const [x1, y1, x2, y2] = scene.rubber; // screen px
      ctx.strokeStyle = "#fff";
      ctx.fillStyle = "rgba(255,255,255,0.08)";
      ctx.fillRect(x1, y1, x2 - x1, y2 - y1);
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    }
    if (scene.cursorHint) {
      const { x, y, text } = scene.cursorHint;
      ctx.setLineDash([]);
      ctx.font = "12px system-ui, sans-serif";
      const w = ctx.measureText(text).width + 8;
      ctx.fillStyle = "rgba(0,0,0,0.7)";
      ctx.fillRect(x + 12, y + 10, w, 18);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, x + 16, y + 23);
    }
    ctx.restore();
  }
}
