// Canvas drawing of the annotation scene. All drawing happens in screen space
// (image coordinates are transformed by hand) so that line widths and point
// radii stay constant at every zoom level.
//
// While keypoints are dragged only the dragged instances change, so the image
// and every other instance are drawn once into an offscreen "static layer" and
// blitted each frame; this keeps frames cheap with dozens of people.

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

export class Renderer {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.layer = document.createElement("canvas");
    this.layerCtx = this.layer.getContext("2d");
    this.layerStamp = null;
  }

  /**
   * Draw one frame.
   * @param {Object} scene see AnnotationView.scene()
   */
  render(scene) {
    const { canvas, ctx } = this;
    const { dpr, view } = scene;
    const dynamic = scene.dynamicKeys;
    const stamp = [canvas.width, canvas.height, view.scale, view.tx, view.ty, scene.staticStamp]
      .join("|");
    if (dynamic && dynamic.size) {
      if (this.layerStamp !== stamp) {
        if (this.layer.width !== canvas.width || this.layer.height !== canvas.height) {
          this.layer.width = canvas.width;
          this.layer.height = canvas.height;
        }
        this.drawStatic(this.layerCtx, scene, dynamic);
        this.layerStamp = stamp;
      }
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.drawImage(this.layer, 0, 0);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      for (const rec of scene.records) {
        if (dynamic.has(rec.key)) this.drawInstance(ctx, scene, rec);
      }
    } else {
      this.layerStamp = null;
      this.drawStatic(ctx, scene, null);
    }
    this.drawOverlays(ctx, scene);
  }

  drawStatic(ctx, scene, skip) {
    const { dpr, view, image } = scene;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#1e1e1e";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (image) {
      ctx.imageSmoothingEnabled = view.scale < 2;
      ctx.drawImage(
        image,
        view.tx,
        view.ty,
        scene.imageWidth * view.scale,
        scene.imageHeight * view.scale,
      );
    }
    for (const rec of scene.records) {
      if (rec.conflict && rec.conflict.current) this.drawGhost(ctx, scene, rec.conflict.current);
    }
    // Rejected first (faint), then the rest, the active instance on top.
    const rejected = [];
    const normal = [];
    let active = null;
    for (const rec of scene.records) {
      if (skip && skip.has(rec.key)) continue;
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

  /** A pre-drawn point marker (CSS px size SPRITE_SIZE, drawn at device resolution). */
  sprite(kind, color, dpr) {
    this.sprites = this.sprites || new Map();
    const id = `${kind}|${color}|${dpr}`;
    let canvas = this.sprites.get(id);
    if (canvas) return canvas;
    canvas = document.createElement("canvas");
    canvas.width = canvas.height = Math.ceil(SPRITE_SIZE * dpr);
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    const c = SPRITE_SIZE / 2;
    ctx.beginPath();
    if (kind === "low") {
      ctx.arc(c, c, POINT_RADIUS + 3.5, 0, Math.PI * 2);
      ctx.lineWidth = 2;
      ctx.strokeStyle = COLORS.lowScore;
      ctx.stroke();
    } else {
      ctx.arc(c, c, POINT_RADIUS, 0, Math.PI * 2);
      ctx.fillStyle = kind === "visible" ? color : "rgba(150,150,150,0.6)";
      ctx.fill();
      ctx.lineWidth = 1;
      if (kind === "occluded") ctx.setLineDash([2, 2]);
      ctx.strokeStyle = kind === "visible" ? "#111" : "#ddd";
      ctx.stroke();
    }
    this.sprites.set(id, canvas);
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
    const occludedSprite = this.sprite("occluded", null, dpr);
    const lowSprite = this.sprite("low", null, dpr);
    const half = SPRITE_SIZE / 2;
    for (const rec of recs) {
      const { keypoints: kps, visibility: vis, keypoint_scores: scores, status } = rec.data;
      const flagLow = status === "predicted" && scores;
      const chosen = selected.get(rec.key);
      for (let k = 0; k < kps.length; k++) {
        if (!vis[k]) continue;
        const x = Math.round((kps[k][0] * scale + tx) * dpr) / dpr;
        const y = Math.round((kps[k][1] * scale + ty) * dpr) / dpr;
        const sprite = vis[k] === 2 ? this.sprite("visible", pointColors[k], dpr) : occludedSprite;
        ctx.drawImage(sprite, x - half, y - half, SPRITE_SIZE, SPRITE_SIZE);
        if (flagLow && scores[k] !== null && scores[k] < LOW_SCORE) {
          ctx.drawImage(lowSprite, x - half, y - half, SPRITE_SIZE, SPRITE_SIZE);
        }
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
