// Viewport of the annotation view: canvas size, zoom and pan (`view` = {scale, tx, ty},
// screen = image * scale + t), screen <-> image coordinates and hit testing.
// Methods are mixed into AnnotationView (see annotate.js).

import { instanceBounds, POINT_RADIUS } from "./render.js";

const HIT_RADIUS = POINT_RADIUS + 5;

export class ViewportMethods {
  resize() {
    const dpr = window.devicePixelRatio || 1;
    const rect = this.stage.getBoundingClientRect();
    this.cssWidth = Math.max(1, Math.floor(rect.width));
    this.cssHeight = Math.max(1, Math.floor(rect.height));
    this.canvas.style.width = `${this.cssWidth}px`;
    this.canvas.style.height = `${this.cssHeight}px`;
    this.canvas.width = Math.floor(this.cssWidth * dpr);
    this.canvas.height = Math.floor(this.cssHeight * dpr);
    this.dpr = dpr;
    if (!this.fitted) this.fit();
    else this.invalidate();
  }

  fit() {
    if (!this.item || !this.cssWidth) return;
    const { width, height } = this.item;
    const scale = Math.min(this.cssWidth / width, this.cssHeight / height) * 0.98;
    this.view = {
      scale,
      tx: (this.cssWidth - width * scale) / 2,
      ty: (this.cssHeight - height * scale) / 2,
    };
    this.fitted = true;
    this.invalidate();
  }

  zoomAt(factor, sx, sy) {
    const v = this.view;
    const scale = Math.min(64, Math.max(0.02, v.scale * factor));
    const f = scale / v.scale;
    this.view = { scale, tx: sx - (sx - v.tx) * f, ty: sy - (sy - v.ty) * f };
    this.invalidate();
  }

  toImage(sx, sy) {
    return [(sx - this.view.tx) / this.view.scale, (sy - this.view.ty) / this.view.scale];
  }

  eventPos(e) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  hitKeypoint(sx, sy) {
    const { scale, tx, ty } = this.view;
    let best = null;
    let bestD = HIT_RADIUS * HIT_RADIUS;
    const consider = (rec, bonus) => {
      const { keypoints, visibility } = rec.data;
      for (let k = 0; k < keypoints.length; k++) {
        if (!visibility[k]) continue;
        const dx = keypoints[k][0] * scale + tx - sx;
        const dy = keypoints[k][1] * scale + ty - sy;
        const d = dx * dx + dy * dy - bonus;
        if (d <= bestD) {
          bestD = d;
          best = { key: rec.key, k };
        }
      }
    };
    for (const rec of this.live()) consider(rec, rec.key === this.activeKey ? 4 : 0);
    return best;
  }

  hitInstance(ix, iy) {
    let best = null;
    let bestArea = Infinity;
    for (const rec of this.live()) {
      const b = instanceBounds(rec.data);
      if (!b || ix < b[0] || ix > b[2] || iy < b[1] || iy > b[3]) continue;
      const area = (b[2] - b[0]) * (b[3] - b[1]);
      if (area < bestArea) {
        bestArea = area;
        best = rec;
      }
    }
    return best;
  }

  /** Screen (client) position of a keypoint, for tests driving the mouse. */
  clientPoint(key, k) {
    const rec = this.record(key);
    const rect = this.canvas.getBoundingClientRect();
    const [x, y] = rec.data.keypoints[k];
    return {
      x: rect.left + x * this.view.scale + this.view.tx,
      y: rect.top + y * this.view.scale + this.view.ty,
    };
  }

  /** Client position of an image point. */
  clientFromImage(x, y) {
    const rect = this.canvas.getBoundingClientRect();
    return {
      x: rect.left + x * this.view.scale + this.view.tx,
      y: rect.top + y * this.view.scale + this.view.ty,
    };
  }
}
