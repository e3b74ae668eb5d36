// Canvas drawing of the annotation scene, in device pixels; shapes.js builds
// what is drawn for each instance (cached Path2D objects, point sprites, level of
// detail) and explains why a repaired layer is pixel-exact.
//
// Two offscreen layers keep frames cheap with a hundred people of 133 keypoints
// on a software canvas:
//   image layer   background + the scaled image; redrawn only when the view,
//                 the canvas size or the image change (zoom, pan, resize, open)
//   scene layer   image layer + every instance except the ones being dragged
// The scene layer remembers, per instance, a signature of what it drew there, the
// device-pixel rectangle it covered and its shape. Each frame compares that with
// the scene: only the rectangles of instances that changed (selected, edited,
// picked up or put down by a drag) are repaired, by redrawing every instance that
// touches them, whole and from its cached shape, over the image layer on a
// scratch canvas, and copying the rectangles back (see updateLayer for why not
// under a clip). So the frame that starts a drag (which both selects an instance
// and lifts it out of the layer) and the frame that ends it cost about as much
// as the few instances around the dragged one.
//
// Zoom and pan: while the view moves, a frame is the scene layer of the last
// precise view, scaled and shifted onto the canvas in one drawImage (the image
// drawn anew only where the old layer does not reach), plus the dragged
// instances and overlays: a few milliseconds however many people there are.
// Once the view has been still for a moment the host asks for precise frames
// (scene.precise): both layers are redrawn at the new view on back canvases, in
// slices of about SLICE_MS per frame (rasterized as they go), while the frames
// keep showing the scaled layer; the finished layers are swapped in. Every frame
// of a zoom or pan, the last included, stays within a frame budget at any number
// of points, where even a fast redraw of 13,300 points takes several frames; the
// blurred or missing detail lasts only for the gesture and a few frames after.
// (WebGL2 instancing would make the full redraw itself cheap, but it would be a
// second renderer to keep equal to this one, and without a GPU, as in headless
// or remote sessions, WebGL is emulated in software and slower than Canvas 2D.)

import { buildShape, describe, DRAW_MARGIN, drawGhost, drawShapes, sameLook } from "./shapes.js";

export { instanceBounds, LOW_SCORE, POINT_RADIUS } from "./shapes.js";

const BACKGROUND = "#1e1e1e";
// A sliced precise redraw works about this long per frame, leaving the frame
// room for the scaled composite.
const SLICE_MS = 6;

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
    this.layerView = null; // the view both layers were drawn at
    this.layerEntries = null; // Map: entry id -> {look, rect, rec, ghost, shape} in the layer
    this.layerTemplate = null;
    this.job = null; // a precise redraw under way (startJob)
  }

  /**
   * Draw one frame.
   * @param {Object} scene see AnnotationView.scene()
   * @returns {string} "done"; "moving" when the frame is a scaled stand-in for a
   *   moved view (draw with scene.precise once the view stops); "settling" when a
   *   precise redraw is under way in slices (draw again, precise, next frame)
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
    const sameImage = this.imageFor === scene.image;
    if (this.imageStamp !== stamp || !sameImage) {
      const cached = sameImage && this.layerEntries && this.layerView;
      if (cached && !scene.precise) {
        this.job = null;
        this.drawMoving(scene);
        return "moving";
      }
      if (cached) {
        if (!this.job || this.job.stamp !== stamp) this.job = this.startJob(scene, stamp);
        if (!this.runJob(scene, performance.now() + SLICE_MS)) {
          this.drawMoving(scene);
          return "settling";
        }
        this.finishJob();
      } else {
        this.job = null;
        this.drawImageLayer(scene, this.imageCtx);
        this.imageStamp = stamp;
        this.imageFor = scene.image;
        this.layerView = { ...view };
        this.layerEntries = null;
      }
    }
    if (this.layerTemplate !== scene.template) this.layerEntries = null;
    this.updateLayer(scene);

    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.layer, 0, 0);
    this.drawDynamic(scene);
    return "done";
  }

  /**
   * A precise redraw of both layers at the scene's view on back canvases, run in
   * slices by runJob while the frames still show the scaled front layer.
   */
  startJob(scene, stamp) {
    const back = this.back || {};
    for (const name of ["image", "layer"]) {
      if (!back[name]) {
        back[name] = document.createElement("canvas");
        back[`${name}Ctx`] = back[name].getContext("2d", { alpha: false });
      }
      back[name].width = this.layer.width;
      back[name].height = this.layer.height;
    }
    this.back = back;
    const entries = this.layerContent(scene, null);
    return {
      stamp,
      view: { ...scene.view },
      template: scene.template,
      entries,
      items: this.ordered(scene, [...entries.values()]),
      next: -1, // -1: the image layer, then the items in order
    };
  }

  /**
   * Run the job until about `deadline` (performance.now()): slices of as many
   * instances as the time per instance measured so far lets fit, each
   * rasterized before the next. True when the job is complete.
   */
  runJob(scene, deadline) {
    const { job, back } = this;
    const ctx = back.layerCtx;
    const jobScene = { ...scene, view: job.view, template: job.template };
    for (let now = performance.now(); now < deadline;) {
      if (job.next === -1) {
        this.drawImageLayer(jobScene, back.imageCtx);
        ctx.setTransform(1, 0, 0, 1, 0, 0);
        ctx.drawImage(back.image, 0, 0);
        job.next = 0;
        job.perItem = 0;
        job.timed = 0;
      } else {
        const guess = job.timed ? job.perItem / job.timed : 0;
        const fit = guess ? Math.floor((deadline - now) / guess) : 2;
        const end = Math.min(job.items.length, job.next + Math.max(1, fit));
        this.drawItems(ctx, jobScene, job.items.slice(job.next, end), null);
        job.timed += end - job.next;
        job.next = end;
      }
      // Rasterize now, so that the slice's cost lands in this frame.
      ctx.getImageData(0, 0, 1, 1);
      const after = performance.now();
      if (job.next > 0 && job.timed) job.perItem += after - now;
      now = after;
      if (job.next >= job.items.length) return true;
    }
    return false;
  }

  /** Put the completed job's canvases in front. */
  finishJob() {
    const { job, back } = this;
    [this.imageLayer, back.image] = [back.image, this.imageLayer];
    [this.imageCtx, back.imageCtx] = [back.imageCtx, this.imageCtx];
    [this.layer, back.layer] = [back.layer, this.layer];
    [this.layerCtx, back.layerCtx] = [back.layerCtx, this.layerCtx];
    this.imageStamp = job.stamp;
    this.layerView = job.view;
    this.layerEntries = job.entries;
    this.layerTemplate = job.template;
    this.job = null;
  }

  /** The dragged instances (on top, at the scene's view) and the overlays. */
  drawDynamic(scene) {
    const dynamic = scene.dynamicKeys;
    if (dynamic && dynamic.size) {
      const shapes = [];
      for (const rec of scene.records) {
        if (!dynamic.has(rec.key)) continue;
        const active = rec.key === scene.activeKey;
        shapes.push(buildShape(rec.data, scene, { active, chosen: scene.selected.get(rec.key) }));
      }
      for (const shape of shapes) drawShapes(this.ctx, scene, [shape]);
    }
    this.drawOverlays(this.ctx, scene);
  }

  /**
   * A frame while the view moves: the scene layer of the last precise view,
   * scaled and shifted to the new one, over the image drawn where it does not reach.
   */
  drawMoving(scene) {
    const { ctx, layer } = this;
    const { dpr, view, image } = scene;
    const old = this.layerView;
    const f = view.scale / old.scale;
    // A layer pixel at device p shows image point (p / dpr - t_old) / s_old,
    // which the new view puts at ((p / dpr - t_old) * f + t_new) * dpr.
    const x = (view.tx - old.tx * f) * dpr;
    const y = (view.ty - old.ty * f) * dpr;
    const w = layer.width * f;
    const h = layer.height * f;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    const covers = x <= 0 && y <= 0 && x + w >= layer.width && y + h >= layer.height;
    if (!covers) {
      ctx.fillStyle = BACKGROUND;
      ctx.fillRect(0, 0, layer.width, layer.height);
      if (image) {
        ctx.save();
        ctx.beginPath();
        ctx.rect(0, 0, layer.width, layer.height);
        ctx.rect(x, y, w, h);
        ctx.clip("evenodd");
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        ctx.imageSmoothingEnabled = view.scale < 2;
        ctx.drawImage(
          image,
          view.tx,
          view.ty,
          scene.imageWidth * view.scale,
          scene.imageHeight * view.scale,
        );
        ctx.restore();
      }
    }
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "low";
    ctx.drawImage(layer, x, y, w, h);
    ctx.restore();
    this.drawDynamic(scene);
  }

  drawImageLayer(scene, ctx) {
    const { dpr, view, image } = scene;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = BACKGROUND;
    ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
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
   * pixels and the device-pixel rectangle those pixels can reach. An instance
   * whose signature did not change keeps its cached shape.
   */
  layerContent(scene, old) {
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
      const before = old && old.get(rec.key);
      const entry = { look, rect: deviceRect(look.bounds, view, dpr), rec, ghost: null };
      entry.same = Boolean(before && before.rec === rec && sameLook(before.look, look));
      entry.shape = entry.same ? before.shape : null;
      entries.set(rec.key, entry);
    }
    return entries;
  }

  /** Bring the scene layer up to date: repair changed rectangles, or redraw it all. */
  updateLayer(scene) {
    const old = this.layerEntries;
    const entries = this.layerContent(scene, old);
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
        const same = entry.ghost ? before && sameLook(before.look, entry.look) : entry.same;
        if (!same) changed(before, entry);
      }
      for (const [id, before] of old) if (!entries.has(id)) changed(before, null);
      // Repairing most of the canvas costs more than redrawing it in one go.
      if (area > 0.5 * width * height) rects = null;
    }
    const ctx = this.layerCtx;
    if (!rects) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.drawImage(this.imageLayer, 0, 0);
      this.drawContent(ctx, scene, [...entries.values()], null);
    } else if (rects.length) {
      // The instances touching the rectangles are drawn whole, without a clip,
      // on a scratch canvas of the layer's size over a copy of the image layer,
      // and the rectangles copied back. Skia rasterizes a path under a clip from
      // edges cut to the clip, which moves anti-aliased edges by rounding errors
      // (this was the repair check's 1,020 differing pixels); on a same-size
      // canvas without clip each path gives exactly the pixels of a full redraw.
      const scratch = this.scratchContext(width, height);
      scratch.setTransform(1, 0, 0, 1, 0, 0);
      // 1:1 copies at whole device pixels: exactly the pixels of the source.
      for (const [x, y, w, h] of rects) scratch.drawImage(this.imageLayer, x, y, w, h, x, y, w, h);
      const touching = [...entries.values()].filter(
        (entry) => entry.rect && rects.some((r) => overlaps(entry.rect, r)),
      );
      this.drawContent(scratch, scene, touching, rects);
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      for (const [x, y, w, h] of rects) ctx.drawImage(scratch.canvas, x, y, w, h, x, y, w, h);
    }
    this.layerEntries = entries;
    this.layerTemplate = scene.template;
  }

  /** The scratch canvas of repairs, at the layer's size. */
  scratchContext(width, height) {
    if (!this.scratch) {
      this.scratch = document.createElement("canvas");
      this.scratchCtx = this.scratch.getContext("2d", { alpha: false });
    }
    if (this.scratch.width !== width || this.scratch.height !== height) {
      this.scratch.width = width;
      this.scratch.height = height;
    }
    return this.scratchCtx;
  }

  /**
   * The drawing order: ghosts, then rejected instances (faint), then the rest,
   * the active instance on top; the same for a whole layer, a repaired part and
   * a sliced redraw.
   */
  ordered(scene, entries) {
    const ghosts = [];
    const rejected = [];
    const normal = [];
    let active = null;
    for (const entry of entries) {
      if (entry.ghost) {
        ghosts.push(entry);
        continue;
      }
      const { rec } = entry;
      if (rec.key === scene.activeKey) active = entry;
      else if (rec.data.status === "rejected") rejected.push(entry);
      else normal.push(entry);
    }
    return [...ghosts, ...rejected, ...normal, ...(active ? [active] : [])];
  }

  /** Draw entries in the given order, building the shapes not cached yet. */
  drawItems(ctx, scene, items, rects) {
    let shapes = [];
    for (const item of items) {
      if (!item.ghost) {
        if (!item.shape) {
          const { rec } = item;
          const active = rec.key === scene.activeKey;
          const chosen = scene.selected.get(rec.key);
          item.shape = buildShape(rec.data, scene, { active, chosen });
        }
        shapes.push(item.shape);
        continue;
      }
      drawShapes(ctx, scene, shapes, rects);
      shapes = [];
      drawGhost(ctx, scene, item.ghost);
    }
    drawShapes(ctx, scene, shapes, rects);
  }

  drawContent(ctx, scene, entries, rects) {
    this.drawItems(ctx, scene, this.ordered(scene, entries), rects);
  }

  drawOverlays(ctx, scene) {
    const { view } = scene;
    ctx.save();
    ctx.setTransform(scene.dpr, 0, 0, scene.dpr, 0, 0);
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = 1.5;
    if (scene.draftBox) {
      const [x1, y1, x2, y2] = scene.draftBox;
      ctx.strokeStyle = "#ffeb3b";
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
    if (scene.marks && scene.marks.length) {
      // Keypoints with open review comments: a red ring around each.
      ctx.setLineDash([]);
      ctx.strokeStyle = "#ff1744";
      ctx.lineWidth = 2;
      for (const mark of scene.marks) {
        ctx.beginPath();
        ctx.arc(mark.x * view.scale + view.tx, mark.y * view.scale + view.ty, 11, 0, 2 * Math.PI);
        ctx.stroke();
      }
      ctx.setLineDash([4, 3]);
      ctx.lineWidth = 1.5;
    }
    if (scene.boxHandles) {
      // Resize handles of the selected instance's box: small squares, drag to resize.
      ctx.setLineDash([]);
      ctx.lineWidth = 1;
      ctx.strokeStyle = "#111";
      ctx.fillStyle = "#fff";
      for (const [x, y] of scene.boxHandles) {
        const sx = x * view.scale + view.tx;
        const sy = y * view.scale + view.ty;
        ctx.fillRect(sx - 3.5, sy - 3.5, 7, 7);
        ctx.strokeRect(sx - 3.5, sy - 3.5, 7, 7);
      }
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
