// The annotation view: canvas editing of the instances of one item, with undo,
// autosave, conflict handling, AI-assist and review.
//
// Model: every instance on screen is a *record* {key, id, version, data,
// deleted, dirty, conflict}. `data` holds the editable Instance fields.
// This module holds setup, rendering, selection and navigation; the rest of
// AnnotationView's methods live in modules named for what they hold and are
// mixed into its prototype: viewport.js (zoom/pan/coordinates, hit tests),
// history.js (undo/redo), edits.js (edit operations), input.js (pointer,
// keyboard, tools), panel.js (side panel) and sync.js (autosave, conflicts).

import { api } from "./api.js";
import { clear, el, toast } from "./dom.js";
import { boxHandles, EditMethods } from "./edits.js";
import { copyData, HistoryMethods } from "./history.js";
import { InputMethods } from "./input.js";
import { PanelMethods } from "./panel.js";
import { attachWorkflow } from "./queue.js";
import { Renderer } from "./render.js";
import { SyncMethods } from "./sync.js";
import { ViewportMethods } from "./viewport.js";

export { SHORTCUTS } from "./input.js";

// Decoded images by item id, so reopening an item (or the next one in the
// review queue, which is prefetched) does not wait for the network or decoder.
const imageCache = new Map();
const IMAGE_CACHE_SIZE = 12;
// A view still for this long gets a precise frame after the scaled ones of a zoom or pan.
const SETTLE_MS = 120;

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
    this.precise = false; // the next frame redraws a moved view precisely
    this.settleTimer = null;
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
    // Team workflow: stage, submit / review buttons and comments (queue.js).
    attachWorkflow(this).catch((error) => toast(error.message, "error"));
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
    clearTimeout(this.settleTimer);
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
        "data-needs": "annotate",
      }),
      place: button("Place P", "Place missing points", () => this.startPlacing(), {
        "data-tool": "place",
        "data-needs": "annotate",
      }),
    };
    // Hidden for roles that cannot edit (me.js, style.css); the server refuses anyway.
    const ANNOTATE = { "data-needs": "annotate" };
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
      button(
        "Template T",
        "Place the template skeleton in the selected box",
        () => this.placeTemplate(),
        ANNOTATE,
      ),
      button("Assist A", "AI-assist in the selected box", () => this.assist(), {
        id: "assist-button",
        "data-needs": "annotate",
      }),
      button("Mirror M", "Swap left/right labels", () => this.mirror(), ANNOTATE),
      button("Delete", "Delete the selected instance (Del)", () => this.deleteActive(), ANNOTATE),
      el("span", { class: "sep" }),
      button("Accept Y", "Accept prediction(s)", () => this.review("accepted"), ANNOTATE),
      button("Reject X", "Reject prediction(s)", () => this.review("rejected"), ANNOTATE),
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
    const precise = this.precise;
    this.precise = false;
    this.renderNow({ precise });
    const frames = this.perf.frames;
    frames.push({ t: timestamp, drawMs: performance.now() - start });
    if (frames.length > 2000) frames.splice(0, 1000);
  }

  /**
   * Draw now. While the view moves (zoom, pan) the renderer draws a scaled copy
   * of its cached layers; once no such frame has come for SETTLE_MS, precise
   * frames redraw them at the view reached, in slices over a few frames.
   */
  renderNow({ precise = false } = {}) {
    this.dirty = false;
    const state = this.renderer.render(this.scene(precise));
    clearTimeout(this.settleTimer);
    this.settleTimer = null;
    if (state === "settling") {
      this.precise = true;
      this.invalidate();
    } else if (state === "moving" && this.alive) {
      this.settleTimer = setTimeout(() => {
        this.settleTimer = null;
        this.precise = true;
        this.invalidate();
      }, SETTLE_MS);
    }
  }

  scene(precise = false) {
    const kind = this.pointer && this.pointer.kind;
    const dragKeys = kind === "drag" || kind === "resize" ? this.pointer.keys : null;
    const activeBox = this.activeBox();
    return {
      precise,
      dpr: this.dpr,
      view: this.view,
      image: this.image,
      imageWidth: this.item.width,
      imageHeight: this.item.height,
      template: this.template,
      records: this.live(),
      selected: this.selected,
      activeKey: this.activeKey,
      dynamicKeys: dragKeys,
      draftBox: this.pointer && this.pointer.kind === "box" ? this.pointer.box : null,
      rubber: this.pointer && this.pointer.kind === "rubber" ? this.pointer.rect : null,
      boxHandles: activeBox ? Object.values(boxHandles(activeBox.box)) : null,
      cursorHint: this.cursorHint(),
      // Keypoints with open comments (comments.js), in image pixels.
      marks: this.commentMarks ? this.commentMarks() : null,
    };
  }

  cursorHint() {
    if (!this.placing || !this.mouse) return null;
    const rec = this.placingRecord();
    const k = rec ? this.nextMissing(rec) : this.placing.next ?? 0;
    if (k === null || k === undefined) return null;
    return { x: this.mouse.x, y: this.mouse.y, text: `place: ${this.template.keypoints[k]}` };
  }

  // -------------------------------------------------------------- records

  live() {
    return this.records.filter((r) => !r.deleted && !this.belowMinScore(r));
  }

  /** A prediction scoring under the panel's score filter: not drawn, not listed, not
   * accepted by "accept all" (unless it is the selected one). */
  belowMinScore(rec) {
    const d = rec.data;
    const min = this.minScore || 0;
    return (
      min > 0 &&
      d.status === "predicted" &&
      d.score !== null &&
      d.score !== undefined &&
      d.score < min &&
      rec.key !== this.activeKey
    );
  }

  record(key) {
    return this.records.find((r) => r.key === key) || null;
  }

  active() {
    const rec = this.record(this.activeKey);
    return rec && !rec.deleted ? rec : null;
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
    if (this.onSelectionChange) this.onSelectionChange();
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
}

// The methods of each part, copied onto the prototype as if written in the class.
const PARTS = [
  ViewportMethods,
  HistoryMethods,
  EditMethods,
  InputMethods,
  PanelMethods,
  SyncMethods,
];
for (const part of PARTS) {
  for (const name of Object.getOwnPropertyNames(part.prototype)) {
    if (name === "constructor") continue;
    if (Object.prototype.hasOwnProperty.call(AnnotationView.prototype, name)) {
      throw new Error(`AnnotationView.${name} is defined twice`);
    }
    Object.defineProperty(
      AnnotationView.prototype,
      name,
      Object.getOwnPropertyDescriptor(part.prototype, name),
    );
  }
}
