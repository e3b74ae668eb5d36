// Input of the annotation view: tools, pointer gestures (drag, box, rubber band,
// pan), wheel zoom, keyboard shortcuts and the shortcut help overlay.
// Methods are mixed into AnnotationView (see annotate.js).

import { el } from "./dom.js";
import {
  boxesToCarry,
  boxesToFollow,
  boxHandles,
  resizedBox,
  shiftedBox,
  tightBox,
} from "./edits.js";
import { instanceBounds, LOW_SCORE } from "./render.js";

/** How near (CSS px) a press must be to a box handle to grab it. */
const HANDLE_HIT = 7;
const RESIZE_CURSORS = {
  nw: "nwse-resize",
  se: "nwse-resize",
  ne: "nesw-resize",
  sw: "nesw-resize",
  n: "ns-resize",
  s: "ns-resize",
  e: "ew-resize",
  w: "ew-resize",
};

export const SHORTCUTS = [
  ["S / Esc", "select tool / clear selection"],
  ["B", "box tool: drag to draw a new instance box"],
  ["Drag a box handle", "resize the selected instance's box (corners and edges)"],
  ["T", "place the template skeleton into the selected box"],
  ["A", "AI-assist: predict the skeleton in the selected box"],
  ["P", "place missing (not labeled) points in template order: click the canvas"],
  ["Click / Shift+click", "select a keypoint / add or remove it"],
  ["Drag on empty canvas", "rubber band: select keypoints inside"],
  ["Ctrl+A", "select all keypoints of the instance"],
  ["Tab / Shift+Tab", "next / previous instance"],
  ["V", "cycle visibility of selected keypoints: visible → occluded → not labeled"],
  ["Arrows (Shift)", "nudge selected keypoints by 1 (10) px"],
  ["M", "mirror: swap left/right labels (template flip pairs); points stay where they are"],
  ["Delete / Backspace", "delete the selected instance"],
  ["Y / Enter", "accept selected prediction (none selected: all; in review: then next item)"],
  ["X / N", "reject selected prediction (none selected: all predicted)"],
  ["Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y", "undo / redo"],
  ["Wheel, + / -, 0", "zoom at cursor, zoom in / out, fit image"],
  ["Space+drag / middle drag", "pan"],
  ["] / PageDown, [ / PageUp", "next / previous item"],
  ["?", "this help"],
];

export class InputMethods {
  buildHelp() {
    const rows = SHORTCUTS.map(([keys, what]) =>
      el("tr", {}, el("td", { class: "keys", text: keys }), el("td", { text: what })),
    );
    return el(
      "div",
      { class: "help hidden", id: "help-overlay", onclick: () => this.toggleHelp(false) },
      el(
        "div",
        { class: "help-box", onclick: (e) => e.stopPropagation() },
        el("h2", { text: "Keyboard shortcuts" }),
        el("table", {}, el("tbody", {}, rows)),
        el("p", {
          class: "hint",
          text:
            "Mirror swaps the data of left/right keypoint pairs (it relabels, it does not move " +
            "points): use it when the left and right sides were confused. Occluded points and " +
            "their limbs are grey and dashed; not-labeled points are listed in the side panel. " +
            `Predictions have a dashed amber box; a red ring marks a keypoint score < ${LOW_SCORE}.`,
        }),
        el("button", { type: "button", onclick: () => this.toggleHelp(false) }, "Close"),
      ),
    );
  }

  toggleHelp(show) {
    const hidden = this.help.classList.contains("hidden");
    this.help.classList.toggle("hidden", !(show ?? hidden));
  }

  setTool(tool) {
    this.tool = tool;
    if (tool !== "place") this.placing = null;
    for (const [name, button] of Object.entries(this.toolButtons || {})) {
      button.classList.toggle("active", name === tool);
    }
    this.root.dataset.tool = tool;
    this.updateCursor();
    this.invalidate();
  }

  updateCursor() {
    if (!this.canvas) return;
    this.canvas.style.cursor = this.spaceDown
      ? "grab"
      : this.tool === "select"
        ? "default"
        : "crosshair";
  }

  // -------------------------------------------------------------- pointer

  onPointerDown(e) {
    this.canvas.focus({ preventScroll: true });
    const pos = this.eventPos(e);
    this.canvas.setPointerCapture(e.pointerId);
    if (e.button === 1 || (e.button === 0 && this.spaceDown)) {
      e.preventDefault();
      this.pointer = { kind: "pan", start: pos, view: { ...this.view } };
      return;
    }
    if (e.button !== 0) return;
    const [ix, iy] = this.toImage(pos.x, pos.y);
    if (this.tool === "box") {
      this.pointer = { kind: "box", start: [ix, iy], box: [ix, iy, ix, iy] };
      return;
    }
    if (this.tool === "place") {
      this.placeAt(ix, iy);
      return;
    }
    const hit = this.hitKeypoint(pos.x, pos.y);
    if (hit) {
      if (e.shiftKey) {
        this.toggleKeypoint(hit.key, hit.k);
        if (!this.selected.get(hit.key).has(hit.k)) return;
      } else if (!this.selected.get(hit.key)?.has(hit.k)) {
        this.select(hit.key, [hit.k]);
      } else {
        this.activeKey = hit.key;
      }
      const pairs = this.selectedPairs().filter(([r, k]) => r.data.visibility[k]);
      const recs = [...new Set(pairs.map(([r]) => r))];
      this.pointer = {
        kind: "drag",
        start: [ix, iy],
        pairs,
        origin: pairs.map(([r, k]) => [r.data.keypoints[k][0], r.data.keypoints[k][1]]),
        recs,
        boxes: boxesToCarry(recs, pairs), // a whole skeleton dragged takes its box along
        keys: new Set(recs.map((r) => r.key)),
        follow: null,
        before: recs.map((r) => this.snapshot(r)),
        moved: false,
      };
      this.pointer.follow = boxesToFollow(recs, pairs, this.pointer.boxes); // derived boxes
      this.invalidate();
      return;
    }
    const handle = this.hitBoxHandle(pos.x, pos.y);
    if (handle) {
      const rec = handle.rec;
      this.pointer = {
        kind: "resize",
        rec,
        handle: handle.id,
        origin: handle.box,
        keys: new Set([rec.key]),
        before: [this.snapshot(rec)],
        moved: false,
      };
      return;
    }
    this.pointer = { kind: "rubber", start: pos, rect: null, shift: e.shiftKey, image: [ix, iy] };
  }

  /** The selected instance's box (its own, else the points' bounds), or null. */
  activeBox() {
    const rec = this.tool === "select" ? this.active() : null;
    if (!rec || rec.deleted) return null;
    const box = rec.data.box || instanceBounds(rec.data);
    return box ? { rec, box: [...box] } : null;
  }

  /** The resize handle of the selected instance's box under screen point (sx, sy). */
  hitBoxHandle(sx, sy) {
    const active = this.activeBox();
    if (!active) return null;
    const { scale, tx, ty } = this.view;
    for (const [id, [x, y]] of Object.entries(boxHandles(active.box))) {
      if (Math.abs(x * scale + tx - sx) <= HANDLE_HIT && Math.abs(y * scale + ty - sy) <= HANDLE_HIT) {
        return { id, ...active };
      }
    }
    return null;
  }

  onPointerMove(e) {
    const pos = this.eventPos(e);
    this.mouse = pos;
    const p = this.pointer;
    if (!p) {
      if (this.placing) this.invalidate();
      else if (this.tool === "select" && !this.spaceDown) {
        const handle = this.hitBoxHandle(pos.x, pos.y);
        this.canvas.style.cursor = handle ? RESIZE_CURSORS[handle.id] : "default";
      }
      return;
    }
    if (p.kind === "pan") {
      this.view = {
        scale: p.view.scale,
        tx: p.view.tx + pos.x - p.start.x,
        ty: p.view.ty + pos.y - p.start.y,
      };
      this.invalidate();
      return;
    }
    const [ix, iy] = this.toImage(pos.x, pos.y);
    if (p.kind === "box") {
      const [x0, y0] = p.start;
      p.box = [Math.min(x0, ix), Math.min(y0, iy), Math.max(x0, ix), Math.max(y0, iy)];
      this.invalidate();
    } else if (p.kind === "drag") {
      const dx = ix - p.start[0];
      const dy = iy - p.start[1];
      p.pairs.forEach(([rec, k], i) => {
        rec.data.keypoints[k] = [p.origin[i][0] + dx, p.origin[i][1] + dy];
      });
      p.recs.forEach((rec, i) => {
        if (p.boxes[i]) rec.data.box = shiftedBox(p.boxes[i], dx, dy);
        else if (p.follow[i]) rec.data.box = tightBox(rec.data);
      });
      p.moved = true;
      // Only the dragged instances changed: the static layer is reused.
      this.invalidate();
    } else if (p.kind === "resize") {
      const { width, height } = this.item;
      p.rec.data.box = resizedBox(p.origin, p.handle, ix, iy, width, height);
      p.moved = true;
      this.invalidate();
    } else if (p.kind === "rubber") {
      const { x: x0, y: y0 } = p.start;
      p.rect = [Math.min(x0, pos.x), Math.min(y0, pos.y), Math.max(x0, pos.x), Math.max(y0, pos.y)];
      this.invalidate();
    }
  }

  onPointerUp(e) {
    const p = this.pointer;
    this.pointer = null;
    if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    if (!p) return;
    if (p.kind === "box") {
      const [x1, y1, x2, y2] = p.box;
      const tiny = (x2 - x1) * this.view.scale < 4 || (y2 - y1) * this.view.scale < 4;
      const clamp = (v, max) => Math.min(max, Math.max(0, v));
      if (!tiny) {
        const box = [
          clamp(x1, this.item.width),
          clamp(y1, this.item.height),
          clamp(x2, this.item.width),
          clamp(y2, this.item.height),
        ];
        this.createInstance(this.emptyData(box), "draw box");
      }
      this.setTool("select");
    } else if (p.kind === "drag") {
      if (p.moved) {
        this.commit("move", p.before, p.recs.map((r) => this.snapshot(r)));
      }
      this.invalidate();
    } else if (p.kind === "resize") {
      // One undoable step, saved like every edit; the box is the user's from now on.
      if (p.moved) this.commit("resize box", p.before, [this.snapshot(p.rec)]);
      this.invalidate();
    } else if (p.kind === "rubber") {
      if (!p.rect || p.rect[2] - p.rect[0] < 3 || p.rect[3] - p.rect[1] < 3) {
        const rec = this.hitInstance(p.image[0], p.image[1]);
        if (rec) this.select(rec.key, [], { add: p.shift });
        else if (!p.shift) this.clearSelection();
      } else {
        this.rubberSelect(p.rect, p.shift);
      }
      this.invalidate();
    }
  }

  rubberSelect([sx1, sy1, sx2, sy2], add) {
    const [x1, y1] = this.toImage(sx1, sy1);
    const [x2, y2] = this.toImage(sx2, sy2);
    if (!add) this.selected = new Map();
    let bestKey = null;
    let bestCount = 0;
    for (const rec of this.live()) {
      const { keypoints, visibility } = rec.data;
      let count = 0;
      for (let k = 0; k < keypoints.length; k++) {
        const [x, y] = keypoints[k];
        if (!visibility[k] || x < x1 || x > x2 || y < y1 || y > y2) continue;
        if (!this.selected.has(rec.key)) this.selected.set(rec.key, new Set());
        this.selected.get(rec.key).add(k);
        count++;
      }
      if (count > bestCount) {
        bestCount = count;
        bestKey = rec.key;
      }
    }
    this.activeKey = bestKey ?? this.activeKey;
    this.afterSelection();
  }

  onWheel(e) {
    e.preventDefault();
    const pos = this.eventPos(e);
    const delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    this.zoomAt(Math.exp(-delta * 0.0015), pos.x, pos.y);
  }

  // ------------------------------------------------------------ keyboard

  onKeyDown(e) {
    const target = e.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
    if (target && target.tagName === "SELECT") return;
    const ctrl = e.ctrlKey || e.metaKey;
    const key = e.key;
    const lower = key.length === 1 ? key.toLowerCase() : key;
    let handled = true;
    if (ctrl && lower === "z" && !e.shiftKey) this.undo();
    else if (ctrl && ((lower === "z" && e.shiftKey) || lower === "y")) this.redo();
    else if (ctrl && lower === "a") {
      const rec = this.active();
      if (rec) {
        const all = rec.data.visibility.map((v, k) => (v ? k : -1)).filter((k) => k >= 0);
        this.select(rec.key, all);
      }
    } else if (ctrl) handled = false;
    else if (e.code === "Space") {
      this.spaceDown = true;
      this.updateCursor();
    } else if (key === "?") this.toggleHelp();
    else if (key === "Escape") {
      if (!this.help.classList.contains("hidden")) this.toggleHelp(false);
      else if (this.tool !== "select") this.setTool("select");
      else this.clearSelection();
    } else if (lower === "s") this.setTool("select");
    else if (lower === "b") this.setTool("box");
    else if (lower === "p") this.startPlacing();
    else if (lower === "t") this.placeTemplate();
    else if (lower === "a") this.assist();
    else if (lower === "m") this.mirror();
    else if (lower === "v") this.cycleVisibility(this.selectedPairs());
    else if (key === "Delete" || key === "Backspace") this.deleteActive();
    else if (lower === "y" || key === "Enter") this.review("accepted");
    else if (lower === "x" || lower === "n") this.review("rejected");
    else if (key === "Tab") this.cycleInstance(e.shiftKey ? -1 : 1);
    else if (key === "+" || key === "=") this.zoomAt(1.25, this.cssWidth / 2, this.cssHeight / 2);
    else if (key === "-" || key === "_") this.zoomAt(0.8, this.cssWidth / 2, this.cssHeight / 2);
    else if (key === "0" || lower === "f") this.fit();
    else if (key === "]" || key === "PageDown") this.step(1);
    else if (key === "[" || key === "PageUp") this.step(-1);
    else if (key.startsWith("Arrow")) {
      const step = e.shiftKey ? 10 : 1;
      if (key === "ArrowLeft") this.nudge(-step, 0);
      else if (key === "ArrowRight") this.nudge(step, 0);
      else if (key === "ArrowUp") this.nudge(0, -step);
      else this.nudge(0, step);
    } else handled = false;
    if (handled) e.preventDefault();
  }
}
