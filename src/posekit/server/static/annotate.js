// The annotation view: canvas editing of the instances of one item, with undo,
// autosave, conflict handling, AI-assist and review.
//
// Model: every instance on screen is a *record* {key, id, version, data,
// deleted, dirty, conflict}. `data` holds the editable Instance fields. Every
// edit goes through `edit()`, which snapshots the touched records before and
// after, so undo/redo is uniform (creating = un-deleting a fresh record,
// deleting = setting `deleted`). Autosave sends dirty records with their
// version; a 409 keeps the local data and stores the server's copy in
// `conflict` until the user picks "keep mine" or "take theirs".

import { api, ApiError } from "./api.js";
import { clear, el, toast } from "./dom.js";
import { layoutInBox } from "./layout.js";
import { instanceBounds, LOW_SCORE, POINT_RADIUS, Renderer } from "./render.js";

const SAVE_DELAY_MS = 600;
const HIT_RADIUS = POINT_RADIUS + 5;
const VIS_LABEL = { 2: "visible", 1: "occluded", 0: "not labeled" };
const NEXT_VIS = { 2: 1, 1: 0, 0: 2 };

// Decoded images by item id, so reopening an item (or the next one in the
// review queue, which is prefetched) does not wait for the network or decoder.
const imageCache = new Map();
const IMAGE_CACHE_SIZE = 12;

/** Load (or take from the cache) the decoded image of an item. */
export function loadImage(iid) {
  if (imageCache.has(iid)) {
    const hit = imageCache.get(iid);
    imageCache.delete(iid);
    imageCache.set(iid, hit);
    return hit;
  }
  const promise = new Promise((resolve, reject) => {
    const img = new Image();
    img.decoding = "async";
    img.onload = () => img.decode().then(() => resolve(img), () => resolve(img));
    img.onerror = () => {
      imageCache.delete(iid);
      reject(new Error(`could not load the image of item ${iid}`));
    };
    img.src = api.imageUrl(iid);
  });
  imageCache.set(iid, promise);
  while (imageCache.size > IMAGE_CACHE_SIZE) imageCache.delete(imageCache.keys().next().value);
  return promise;
}

const copyData = (d) => ({
  keypoints: d.keypoints.map((p) => [p[0], p[1]]),
  visibility: d.visibility.slice(),
  keypoint_scores: d.keypoint_scores ? d.keypoint_scores.slice() : null,
  box: d.box ? d.box.slice() : null,
  score: d.score ?? null,
  source: d.source || "manual",
  status: d.status || "accepted",
  track_id: d.track_id ?? null,
});

export const SHORTCUTS = [
  ["S / Esc", "select tool / clear selection"],
  ["B", "box tool: drag to draw a new instance box"],
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

export class AnnotationView {
  /**
   * @param {HTMLElement} root container to render into
   * @param {Object} options {project, iid, nav: {ids, index, label, hrefFor(iid)}, go(hash)}
   */
  constructor(root, { project, iid, nav, go }) {
    this.root = root;
    this.project = project;
    this.template = project.template;
    this.K = this.template.keypoints.length;
    this.iid = iid;
    this.nav = nav;
    this.go = go;
    this.records = [];
    this.nextKey = 1;
    this.selected = new Map(); // record key -> Set of keypoint indices
    this.activeKey = null;
    this.undoStack = [];
    this.redoStack = [];
    this.tool = "select";
    this.placing = null; // {key|null, next: k|null}
    this.view = { scale: 1, tx: 0, ty: 0 };
    this.pointer = null; // current gesture
    this.spaceDown = false;
    this.dirty = true;
    this.saving = false;
    this.saveError = null;
    this.saveTimer = null;
    this.frameRequested = false;
    this.alive = true;
    this.listeners = [];
    this.perf = { frames: [] };
  }

  // ---------------------------------------------------------------- setup

  async open(startedAt) {
    const [detail, image] = await Promise.all([api.item(this.iid), loadImage(this.iid)]);
    if (!this.alive) return;
    this.item = detail.item;
    this.image = image;
    for (const inst of detail.instances) this.addServerRecord(inst);
    this.build();
    this.fit();
    this.renderNow();
    this.perf.openMs = performance.now() - startedAt;
    this.root.dataset.ready = "1";
    this.prefetchNeighbours();
  }

  addServerRecord(inst) {
    const rec = {
      key: this.nextKey++,
      id: inst.id,
      version: inst.version,
      data: copyData(inst),
      deleted: false,
      dirty: false,
      stamp: 0,
      conflict: null,
    };
    this.records.push(rec);
    return rec;
  }

  prefetchNeighbours() {
    if (!this.nav) return;
    for (const offset of [1, -1]) {
      const id = this.nav.ids[this.nav.index + offset];
      if (id !== undefined) loadImage(id).catch(() => {});
    }
  }

  listen(target, type, handler, options) {
    target.addEventListener(type, handler, options);
    this.listeners.push([target, type, handler, options]);
  }

  destroy() {
    this.alive = false;
    for (const [target, type, handler, options] of this.listeners) {
      target.removeEventListener(type, handler, options);
    }
    if (this.resizeObserver) this.resizeObserver.disconnect();
    clearTimeout(this.saveTimer);
  }

  build() {
    const root = clear(this.root);
    root.classList.add("annotate");
    // Toolbar buttons hand the focus back to the canvas so that a following
    // Enter or Space is a shortcut, not a second click on the button.
    const button = (label, title, action, attrs = {}) =>
      el(
        "button",
        {
          type: "button",
          title,
          onclick: () => {
            this.canvas.focus({ preventScroll: true });
            action();
          },
          ...attrs,
        },
        label,
      );

    this.toolButtons = {
      select: button("Select S", "Select and drag keypoints", () => this.setTool("select"), {
        "data-tool": "select",
      }),
      box: button("Box B", "Draw a box for a new instance", () => this.setTool("box"), {
        "data-tool": "box",
      }),
      place: button("Place P", "Place missing points", () => this.startPlacing(), {
        "data-tool": "place",
      }),
    };
    this.saveStatus = el("span", { id: "save-status", class: "save-status" });
    const navLabel = this.nav
      ? `${this.nav.label} ${this.nav.index + 1} / ${this.nav.ids.length}`
      : "";
    const toolbar = el(
      "div",
      { class: "toolbar" },
      button("←", "Back to the project", () => this.leave(`#/projects/${this.project.id}`)),
      el("span", { class: "file-name", id: "file-name", text: this.item.file_name }),
      el("span", { class: "sep" }),
      ...Object.values(this.toolButtons),
      el("span", { class: "sep" }),
      button("Template T", "Place the template skeleton in the selected box", () =>
        this.placeTemplate(),
      ),
      button("Assist A", "AI-assist in the selected box", () => this.assist(), {
        id: "assist-button",
      }),
      button("Mirror M", "Swap left/right labels", () => this.mirror()),
      button("Delete", "Delete the selected instance (Del)", () => this.deleteActive()),
      el("span", { class: "sep" }),
      button("Accept Y", "Accept prediction(s)", () => this.review("accepted")),
      button("Reject X", "Reject prediction(s)", () => this.review("rejected")),
      el("span", { class: "sep" }),
      button("Undo", "Ctrl+Z", () => this.undo()),
      button("Redo", "Ctrl+Shift+Z", () => this.redo()),
      button("Fit 0", "Fit the image", () => this.fit()),
      el("span", { class: "grow" }),
      this.nav ? button("◀", "Previous item ([)", () => this.step(-1)) : null,
      this.nav ? el("span", { class: "nav-label", text: navLabel }) : null,
      this.nav ? button("▶", "Next item (])", () => this.step(1)) : null,
      this.saveStatus,
      button("?", "Keyboard shortcuts", () => this.toggleHelp()),
    );

    this.canvas = el("canvas", { id: "canvas", tabindex: "0" });
    this.stage = el("div", { class: "stage" }, this.canvas);
    this.side = el("aside", { class: "side", id: "side-panel" });
    this.help = this.buildHelp();
    root.append(toolbar, el("div", { class: "work" }, this.stage, this.side), this.help);
    this.renderer = new Renderer(this.canvas);

    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(this.stage);
    this.resize();
    this.listen(this.canvas, "pointerdown", (e) => this.onPointerDown(e));
    this.listen(this.canvas, "pointermove", (e) => this.onPointerMove(e));
    this.listen(this.canvas, "pointerup", (e) => this.onPointerUp(e));
    this.listen(this.canvas, "pointercancel", (e) => this.onPointerUp(e));
    this.listen(this.canvas, "wheel", (e) => this.onWheel(e), { passive: false });
    this.listen(this.canvas, "contextmenu", (e) => e.preventDefault());
    this.listen(this.canvas, "auxclick", (e) => e.preventDefault());
    this.listen(window, "keydown", (e) => this.onKeyDown(e));
    this.listen(window, "keyup", (e) => {
      if (e.code === "Space") {
        this.spaceDown = false;
        this.updateCursor();
      }
    });
    this.listen(window, "beforeunload", (e) => {
      if (this.hasUnsaved()) {
        e.preventDefault();
        e.returnValue = "";
      }
    });
    this.setTool("select");
    this.updatePanel();
    this.updateSaveStatus();
  }

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

  // ------------------------------------------------------------ rendering

  /** Mark everything for redraw on the next animation frame. */
  invalidate() {
    this.dirty = true;
    if (!this.frameRequested && this.alive) {
      this.frameRequested = true;
      requestAnimationFrame((t) => this.frame(t));
    }
  }

  frame(timestamp) {
    this.frameRequested = false;
    if (!this.alive || !this.dirty) return;
    const start = performance.now();
    this.renderNow();
    const frames = this.perf.frames;
    frames.push({ t: timestamp, drawMs: performance.now() - start });
    if (frames.length > 2000) frames.splice(0, 1000);
  }

  renderNow() {
    this.dirty = false;
    this.renderer.render(this.scene());
  }

  scene() {
    const dragKeys = this.pointer && this.pointer.kind === "drag" ? this.pointer.keys : null;
    return {
      dpr: this.dpr,
      view: this.view,
      image: this.image,
      imageWidth: this.item.width,
      imageHeight: this.item.height,
      template: this.template,
      records: this.records.filter((r) => !r.deleted),
      selected: this.selected,
      activeKey: this.activeKey,
      dynamicKeys: dragKeys,
      draftBox: this.pointer && this.pointer.kind === "box" ? this.pointer.box : null,
      rubber: this.pointer && this.pointer.kind === "rubber" ? this.pointer.rect : null,
      cursorHint: this.cursorHint(),
    };
  }

  cursorHint() {
    if (!this.placing || !this.mouse) return null;
    const rec = this.placingRecord();
    const k = rec ? this.nextMissing(rec) : this.placing.next ?? 0;
    if (k === null || k === undefined) return null;
    return { x: this.mouse.x, y: this.mouse.y, text: `place: ${this.template.keypoints[k]}` };
  }

  // ------------------------------------------------------------ geometry

  toImage(sx, sy) {
    return [(sx - this.view.tx) / this.view.scale, (sy - this.view.ty) / this.view.scale];
  }

  eventPos(e) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  live() {
    return this.records.filter((r) => !r.deleted);
  }

  record(key) {
    return this.records.find((r) => r.key === key) || null;
  }

  active() {
    const rec = this.record(this.activeKey);
    return rec && !rec.deleted ? rec : null;
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

  // ------------------------------------------------------------ selection

  select(key, kps = [], { add = false } = {}) {
    if (!add) this.selected = new Map();
    if (key !== null && key !== undefined) {
      const set = this.selected.get(key) || new Set();
      for (const k of kps) set.add(k);
      this.selected.set(key, set);
    }
    this.activeKey = key;
    this.afterSelection();
  }

  toggleKeypoint(key, k) {
    const set = this.selected.get(key) || new Set();
    if (set.has(k)) set.delete(k);
    else set.add(k);
    this.selected.set(key, set);
    this.activeKey = key;
    this.afterSelection();
  }

  clearSelection() {
    this.selected = new Map();
    this.activeKey = null;
    this.afterSelection();
  }

  afterSelection() {
    this.invalidate();
    this.updatePanel();
  }

  selectedPairs() {
    const pairs = [];
    for (const [key, set] of this.selected) {
      const rec = this.record(key);
      if (!rec || rec.deleted) continue;
      for (const k of set) pairs.push([rec, k]);
    }
    return pairs;
  }

  cycleInstance(delta) {
    const live = this.live();
    if (!live.length) return;
    const at = live.findIndex((r) => r.key === this.activeKey);
    const next = live[(at + delta + live.length) % live.length] || live[0];
    this.select(next.key);
  }

  // ---------------------------------------------------------------- edits

  /**
   * Apply a change to some records as one undoable step.
   * @param {string} label
   * @param {Object[]} recs the records the mutator touches
   * @param {Function} mutate
   */
  edit(label, recs, mutate) {
    const before = recs.map((r) => this.snapshot(r));
    mutate();
    const after = recs.map((r) => this.snapshot(r));
    this.commit(label, before, after);
  }

  snapshot(rec) {
    return { key: rec.key, data: copyData(rec.data), deleted: rec.deleted };
  }

  commit(label, before, after) {
    this.undoStack.push({ label, before, after });
    if (this.undoStack.length > 500) this.undoStack.shift();
    this.redoStack = [];
    this.touch(after.map((s) => s.key));
  }

  touch(keys) {
    for (const key of keys) {
      const rec = this.record(key);
      rec.dirty = true;
      rec.stamp++;
    }
    this.invalidate();
    this.updatePanel();
    this.scheduleSave();
  }

  restore(snapshots) {
    for (const s of snapshots) {
      const rec = this.record(s.key);
      rec.data = copyData(s.data);
      rec.deleted = s.deleted;
      if (rec.deleted) this.selected.delete(rec.key);
    }
    if (this.activeKey !== null && !this.active()) this.activeKey = null;
    this.touch(snapshots.map((s) => s.key));
  }

  undo() {
    const step = this.undoStack.pop();
    if (!step) return;
    this.redoStack.push(step);
    this.restore(step.before);
  }

  redo() {
    const step = this.redoStack.pop();
    if (!step) return;
    this.undoStack.push(step);
    this.restore(step.after);
  }

  newRecord(data) {
    const rec = {
      key: this.nextKey++,
      id: null,
      version: 0,
      data: copyData(data),
      deleted: true, // becomes live through an undoable edit
      dirty: false,
      stamp: 0,
      conflict: null,
    };
    this.records.push(rec);
    return rec;
  }

  emptyData(box) {
    return {
      keypoints: Array.from({ length: this.K }, () => [0, 0]),
      visibility: new Array(this.K).fill(0),
      keypoint_scores: null,
      box,
      score: null,
      source: "manual",
      status: "accepted",
      track_id: null,
    };
  }

  createInstance(data, label = "create instance") {
    const rec = this.newRecord(data);
    this.edit(label, [rec], () => {
      rec.deleted = false;
    });
    this.select(rec.key);
    return rec;
  }

  placeTemplate() {
    const rec = this.active();
    if (!rec || !rec.data.box) {
      toast("Select or draw a box first (B), then press T.", "error");
      return;
    }
    this.edit("place template", [rec], () => {
      rec.data.keypoints = layoutInBox(this.template.keypoints, rec.data.box);
      rec.data.visibility = new Array(this.K).fill(2);
      rec.data.keypoint_scores = null;
    });
    this.select(rec.key);
  }

  mirror() {
    const rec = this.active();
    const flip = this.template.flip_index;
    if (!rec) {
      toast("Select an instance to mirror.", "error");
      return;
    }
    if (!flip || flip.length !== this.K) {
      toast("This template has no left/right flip pairs.", "error");
      return;
    }
    this.edit("mirror", [rec], () => {
      const d = rec.data;
      const kps = d.keypoints;
      const vis = d.visibility;
      const scores = d.keypoint_scores;
      d.keypoints = flip.map((j) => [kps[j][0], kps[j][1]]);
      d.visibility = flip.map((j) => vis[j]);
      if (scores) d.keypoint_scores = flip.map((j) => scores[j]);
    });
    const set = this.selected.get(rec.key);
    if (set) this.selected.set(rec.key, new Set([...set].map((k) => flip[k])));
    this.updatePanel();
  }

  deleteActive() {
    const rec = this.active();
    if (!rec) {
      toast("Select an instance to delete.", "error");
      return;
    }
    this.edit("delete instance", [rec], () => {
      rec.deleted = true;
    });
    this.clearSelection();
  }

  cycleVisibility(pairs) {
    if (!pairs.length) {
      toast("Select keypoints first (click them), then press V.", "error");
      return;
    }
    const recs = [...new Set(pairs.map(([r]) => r))];
    this.edit("visibility", recs, () => {
      for (const [rec, k] of pairs) {
        const v = rec.data.visibility[k];
        rec.data.visibility[k] = NEXT_VIS[v];
        if (NEXT_VIS[v] === 0) this.selected.get(rec.key)?.delete(k);
      }
    });
  }

  setVisibility(rec, k, v) {
    this.edit("visibility", [rec], () => {
      rec.data.visibility[k] = v;
    });
  }

  nudge(dx, dy) {
    const pairs = this.selectedPairs().filter(([r, k]) => r.data.visibility[k]);
    if (!pairs.length) return;
    const recs = [...new Set(pairs.map(([r]) => r))];
    this.edit("move", recs, () => {
      for (const [rec, k] of pairs) {
        rec.data.keypoints[k] = [rec.data.keypoints[k][0] + dx, rec.data.keypoints[k][1] + dy];
      }
    });
  }

  review(status) {
    const rec = this.active();
    let targets;
    if (rec) targets = [rec];
    else targets = this.live().filter((r) => r.data.status === "predicted");
    if (!targets.length) {
      if (this.nav && this.nav.review && status === "accepted") this.step(1);
      else toast("Nothing to review here.", "info");
      return;
    }
    this.edit(status === "accepted" ? "accept" : "reject", targets, () => {
      for (const r of targets) r.data.status = status;
    });
    // In the review queue, settling every prediction of an item moves on.
    if (!rec && this.nav && this.nav.review) this.step(1);
  }

  async assist() {
    const rec = this.active();
    const box = rec ? rec.data.box || instanceBounds(rec.data) : null;
    if (!box) {
      toast("Draw (B) or select a box first, then press A.", "error");
      return;
    }
    const button = document.getElementById("assist-button");
    if (button) button.disabled = true;
    this.root.dataset.assist = "running";
    try {
      const predicted = await api.assist(this.iid, box.map(Number));
      if (!this.alive) return;
      const data = copyData({ ...predicted, box: predicted.box || box });
      const unlabeled = rec && rec.data.visibility.every((v) => !v);
      if (unlabeled) {
        // The box was drawn for this: the prediction fills it in (one undo step).
        this.edit("assist", [rec], () => {
          rec.data = data;
        });
        this.select(rec.key);
      } else {
        this.createInstance(data, "assist");
      }
      this.root.dataset.assist = "done";
    } catch (error) {
      this.root.dataset.assist = "error";
      toast(`AI-assist failed: ${error.message}`, "error");
    } finally {
      if (button) button.disabled = false;
    }
  }

  // --------------------------------------------------------- placing mode

  placingRecord() {
    if (!this.placing) return null;
    const rec = this.placing.key !== null ? this.record(this.placing.key) : null;
    return rec && !rec.deleted ? rec : null;
  }

  nextMissing(rec) {
    if (this.placing && this.placing.next !== null) {
      if (!rec.data.visibility[this.placing.next]) return this.placing.next;
    }
    const k = rec.data.visibility.findIndex((v) => !v);
    return k < 0 ? null : k;
  }

  startPlacing(k = null) {
    const rec = this.active();
    if (rec && this.nextMissing(rec) === null && k === null) {
      toast("Every keypoint of this instance is placed.", "info");
      return;
    }
    this.placing = { key: rec ? rec.key : null, next: k };
    this.setTool("place");
  }

  placeAt(ix, iy) {
    let rec = this.placingRecord();
    if (!rec) {
      // Placing without a selected instance starts a new one, point by point.
      rec = this.newRecord(this.emptyData(null));
      const k = this.placing.next ?? 0;
      this.edit("place point", [rec], () => {
        rec.deleted = false;
        rec.data.keypoints[k] = [ix, iy];
        rec.data.visibility[k] = 2;
      });
      this.placing = { key: rec.key, next: null };
      this.select(rec.key, [k]);
      return;
    }
    const k = this.nextMissing(rec);
    if (k === null) return;
    this.edit("place point", [rec], () => {
      rec.data.keypoints[k] = [ix, iy];
      rec.data.visibility[k] = 2;
    });
    this.placing.next = null;
    this.select(rec.key, [k]);
    if (this.nextMissing(rec) === null) {
      this.setTool("select");
      toast("All keypoints placed.", "info");
    }
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
        keys: new Set(recs.map((r) => r.key)),
        before: recs.map((r) => this.snapshot(r)),
        moved: false,
      };
      this.invalidate();
      return;
    }
    this.pointer = { kind: "rubber", start: pos, rect: null, shift: e.shiftKey, image: [ix, iy] };
  }

  onPointerMove(e) {
    const pos = this.eventPos(e);
    this.mouse = pos;
    const p = this.pointer;
    if (!p) {
      if (this.placing) this.invalidate();
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
      p.moved = true;
      // Only the dragged instances changed: the static layer is reused.
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

  // ---------------------------------------------------------- side panel

  updatePanel() {
    if (!this.side) return;
    const side = clear(this.side);
    const live = this.live();
    side.append(el("h3", { text: `Instances (${live.length})` }));
    const list = el("ol", { class: "instances" });
    live.forEach((rec, n) => {
      const d = rec.data;
      const labeled = d.visibility.filter((v) => v).length;
      const score = d.score === null || d.score === undefined ? "" : ` ${d.score.toFixed(2)}`;
      const row = el(
        "li",
        {
          class: `inst inst-${d.status}${rec.key === this.activeKey ? " active" : ""}`,
          dataset: { key: String(rec.key) },
          onclick: () => this.select(rec.key),
        },
        el("span", { text: `#${n + 1} ${d.status}${score}` }),
        el("span", { class: "muted", text: ` ${d.source} · ${labeled}/${this.K}` }),
        rec.conflict ? el("span", { class: "badge-conflict", text: " conflict" }) : null,
      );
      list.append(row);
    });
    side.append(list);

    for (const rec of this.records.filter((r) => r.conflict)) side.append(this.conflictPanel(rec));

    const rec = this.active();
    if (!rec) {
      side.append(
        el("p", {
          class: "hint",
          text: "Click an instance or draw a box (B). Press ? for all shortcuts.",
        }),
      );
      return;
    }
    const d = rec.data;
    const selectedKps = this.selected.get(rec.key) || new Set();
    side.append(el("h3", { text: "Keypoints" }));
    const table = el("table", { class: "keypoints", id: "keypoint-table" });
    const missing = [];
    this.template.keypoints.forEach((name, k) => {
      const v = d.visibility[k];
      if (!v) missing.push(k);
      const score = d.keypoint_scores ? d.keypoint_scores[k] : null;
      const low = d.status === "predicted" && score !== null && score < LOW_SCORE;
      const badge = el(
        "button",
        {
          type: "button",
          class: `vis vis-${v}`,
          title: "Click to cycle visible → occluded → not labeled",
          dataset: { k: String(k) },
          onclick: (e) => {
            e.stopPropagation();
            this.setVisibility(rec, k, NEXT_VIS[d.visibility[k]]);
          },
        },
        VIS_LABEL[v],
      );
      const row = el(
        "tr",
        {
          class: `${selectedKps.has(k) ? "selected " : ""}${v ? "" : "missing"}`,
          dataset: { k: String(k) },
          onclick: () => (v ? this.select(rec.key, [k]) : this.startPlacing(k)),
        },
        el("td", { class: "kp-name", text: name }),
        el("td", {}, badge),
        el("td", {
          class: low ? "score low" : "score",
          text: score === null || score === undefined ? "" : score.toFixed(2),
        }),
      );
      table.append(row);
    });
    side.append(table);
    if (missing.length) {
      side.append(
        el(
          "div",
          { class: "missing-list", id: "missing-list" },
          el("h3", { text: `Not labeled (${missing.length})` }),
          el(
            "p",
            { class: "hint" },
            "Press P (or click a name) then click the canvas to place them in template order.",
          ),
          el(
            "ul",
            {},
            missing.map((k) =>
              el("li", {
                text: this.template.keypoints[k],
                onclick: () => this.startPlacing(k),
              }),
            ),
          ),
        ),
      );
    }
  }

  conflictPanel(rec) {
    const current = rec.conflict.current;
    const text = current
      ? `Someone else saved this instance (server version ${current.version}). ` +
        "Yours is kept here; the server's is drawn as a pale ghost."
      : "This instance was deleted on the server. Yours is kept here.";
    return el(
      "div",
      { class: "conflict", role: "alert" },
      el("strong", { text: "Conflict" }),
      el("p", { text }),
      el(
        "button",
        { type: "button", class: "keep-mine", onclick: () => this.keepMine(rec) },
        "Keep mine (overwrite)",
      ),
      el(
        "button",
        { type: "button", class: "take-theirs", onclick: () => this.takeTheirs(rec) },
        "Take theirs",
      ),
    );
  }

  keepMine(rec) {
    const current = rec.conflict.current;
    if (current) rec.version = current.version;
    else {
      rec.id = null;
      rec.version = 0;
    }
    rec.conflict = null;
    rec.dirty = true;
    rec.stamp++;
    this.invalidate();
    this.updatePanel();
    this.saveSoon(0);
  }

  takeTheirs(rec) {
    const current = rec.conflict.current;
    rec.conflict = null;
    this.edit("take theirs", [rec], () => {
      if (current) {
        rec.data = copyData(current);
        rec.deleted = false;
      } else rec.deleted = true;
    });
    // The server's version is what we now hold: nothing to send.
    if (current) rec.version = current.version;
    else rec.id = null;
    rec.dirty = false;
    this.updateSaveStatus();
  }

  // ---------------------------------------------------------------- saving

  hasUnsaved() {
    return this.records.some((r) => r.dirty || r.conflict);
  }

  scheduleSave() {
    this.saveSoon(SAVE_DELAY_MS);
  }

  saveSoon(delay) {
    clearTimeout(this.saveTimer);
    this.updateSaveStatus();
    this.saveTimer = setTimeout(() => this.saveAll(), delay);
  }

  /** Send every dirty record; resolves when nothing is left to send (or on error). */
  async saveAll() {
    if (this.saving) {
      this.saveAgain = true;
      return;
    }
    if (this.pointer && this.pointer.kind === "drag") {
      this.saveSoon(SAVE_DELAY_MS);
      return;
    }
    this.saving = true;
    this.saveError = null;
    this.updateSaveStatus();
    try {
      for (const rec of this.records) {
        if (!rec.dirty || rec.conflict) continue;
        await this.saveRecord(rec);
      }
    } catch (error) {
      this.saveError = error;
      toast(`Saving failed: ${error.message}`, "error");
      clearTimeout(this.saveTimer);
      this.saveTimer = setTimeout(() => this.saveAll(), 5000);
    } finally {
      this.saving = false;
      this.updateSaveStatus();
      this.updatePanel();
    }
    if (this.saveAgain) {
      this.saveAgain = false;
      await this.saveAll();
    }
  }

  payload(rec) {
    const d = rec.data;
    return {
      keypoints: d.keypoints,
      visibility: d.visibility,
      keypoint_scores: d.keypoint_scores,
      box: d.box,
      score: d.score,
      source: d.source,
      status: d.status,
      track_id: d.track_id,
    };
  }

  async saveRecord(rec) {
    const stamp = rec.stamp;
    try {
      if (rec.deleted) {
        if (rec.id !== null) {
          await api.deleteInstance(rec.id, rec.version);
          rec.id = null;
          rec.version = 0;
        }
      } else if (rec.id === null) {
        const saved = await api.createInstance(this.iid, this.payload(rec));
        rec.id = saved.id;
        rec.version = saved.version;
      } else {
        const saved = await api.updateInstance(rec.id, {
          version: rec.version,
          ...this.payload(rec),
        });
        rec.version = saved.version;
      }
      if (rec.stamp === stamp) rec.dirty = false;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 409 || error.status === 404)) {
        rec.conflict = { current: error.status === 409 ? error.body.current || null : null };
        if (rec.deleted && !rec.conflict.current) {
          // Deleted here and there: both sides agree.
          rec.conflict = null;
          rec.id = null;
          rec.version = 0;
          rec.dirty = false;
        }
        this.invalidate();
        return;
      }
      throw error;
    }
  }

  /** Wait until pending edits are saved; false when a conflict or error remains. */
  async flush() {
    clearTimeout(this.saveTimer);
    while (this.saving) await new Promise((r) => setTimeout(r, 30));
    await this.saveAll();
    return !this.hasUnsaved();
  }

  updateSaveStatus() {
    if (!this.saveStatus) return;
    let state = "saved";
    let text = "✓ saved";
    if (this.records.some((r) => r.conflict)) {
      state = "conflict";
      text = "⚠ conflict";
    } else if (this.saveError) {
      state = "error";
      text = "✗ not saved (retrying)";
    } else if (this.saving || this.records.some((r) => r.dirty)) {
      state = "saving";
      text = "… saving";
    }
    this.saveStatus.dataset.state = state;
    this.saveStatus.textContent = text;
    this.saveStatus.className = `save-status save-${state}`;
  }

  // ------------------------------------------------------------ navigation

  async leave(hash) {
    const ok = await this.flush();
    if (!ok && !window.confirm("Some edits are not saved (conflict or error). Leave anyway?")) {
      return;
    }
    this.go(hash);
  }

  step(delta) {
    if (!this.nav) return;
    const index = this.nav.index + delta;
    if (index < 0 || index >= this.nav.ids.length) {
      toast(delta > 0 ? "End of the list." : "Start of the list.", "info");
      return;
    }
    this.leave(this.nav.hrefFor(this.nav.ids[index]));
  }

  /** Plain-data view of the state, for tests and debugging (window.posekit.state()). */
  stateForTests() {
    return {
      itemId: this.iid,
      tool: this.tool,
      activeKey: this.activeKey,
      view: { ...this.view },
      saveState: this.saveStatus ? this.saveStatus.dataset.state : null,
      undo: this.undoStack.length,
      redo: this.redoStack.length,
      instances: this.records.map((r) => ({
        key: r.key,
        id: r.id,
        version: r.version,
        deleted: r.deleted,
        dirty: r.dirty,
        conflict: r.conflict ? r.conflict.current : null,
        ...copyData(r.data),
      })),
      selected: [...this.selected].map(([key, set]) => [key, [...set]]),
    };
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
