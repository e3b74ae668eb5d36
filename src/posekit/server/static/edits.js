// Edit operations of the annotation view: creating, deleting, mirroring,
// visibility, nudging, review decisions, AI-assist and placing missing points.
// Each is one undoable step through `edit()` (history.js).
// Methods are mixed into AnnotationView (see annotate.js).

import { api } from "./api.js";
import { toast } from "./dom.js";
import { copyData } from "./history.js";
import { layoutInBox } from "./layout.js";
import { instanceBounds } from "./render.js";

/** Visibility after a click on its badge or V: visible -> occluded -> not labeled. */
export const NEXT_VIS = { 2: 1, 1: 0, 0: 2 };

/** Whether `ks` holds every labeled keypoint of `rec`: the whole skeleton moves, and
 * its box (what exports write) moves with it. */
export function movesWholeSkeleton(rec, ks) {
  const set = new Set(ks);
  return rec.data.visibility.some((v) => v) && rec.data.visibility.every((v, k) => !v || set.has(k));
}

/** The boxes to carry along when `pairs` ([rec, k]) move: per record of `recs`, a copy
 * of its box when its whole skeleton moves, else null. */
export function boxesToCarry(recs, pairs) {
  return recs.map((rec) => {
    const ks = pairs.filter(([r]) => r === rec).map(([, k]) => k);
    return rec.data.box && movesWholeSkeleton(rec, ks) ? [...rec.data.box] : null;
  });
}

/** A box moved by (dx, dy). */
export function shiftedBox(box, dx, dy) {
  return [box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy];
}

/** The tight box around the labeled points of `data` (null when none is labeled). */
export function tightBox(data) {
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

/** Whether the box of `data` was derived from its keypoints (it is their tight box,
 * within half a pixel): such a box follows the points when some of them move. A box
 * somebody drew, resized or a detector gave stays where it is. */
export function boxFollowsPoints(data) {
  const tight = data.box ? tightBox(data) : null;
  return !!tight && data.box.every((v, i) => Math.abs(v - tight[i]) <= 0.5);
}

/** Per record of `recs`: whether its box is to be re-derived from the points after
 * `pairs` move (derived boxes whose skeleton does not move as a whole). */
export function boxesToFollow(recs, pairs, carried) {
  return recs.map((rec, i) => !carried[i] && boxFollowsPoints(rec.data));
}

/** The eight resize handles of a box: id -> [x, y] (corners and edge midpoints). */
export function boxHandles([x1, y1, x2, y2]) {
  const mx = (x1 + x2) / 2;
  const my = (y1 + y2) / 2;
  return {
    nw: [x1, y1],
    n: [mx, y1],
    ne: [x2, y1],
    e: [x2, my],
    se: [x2, y2],
    s: [mx, y2],
    sw: [x1, y2],
    w: [x1, my],
  };
}

/** `box` with the sides of `handle` (e.g. "ne": top and right) moved to (ix, iy),
 * inside a `width` x `height` image and at least one pixel wide and high. */
export function resizedBox(box, handle, ix, iy, width, height) {
  const clamp = (v, max) => Math.min(max, Math.max(0, v));
  let [x1, y1, x2, y2] = box;
  if (handle.includes("w")) x1 = clamp(ix, width);
  if (handle.includes("e")) x2 = clamp(ix, width);
  if (handle.includes("n")) y1 = clamp(iy, height);
  if (handle.includes("s")) y2 = clamp(iy, height);
  const out = [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)];
  if (out[2] - out[0] < 1) out[2] = out[0] + 1;
  if (out[3] - out[1] < 1) out[3] = out[1] + 1;
  return out;
}

export class EditMethods {
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
      // A template nobody adjusted is a guess, not ground truth: it waits for review
      // (exports write accepted instances only) until the person accepts it (Y).
      rec.data.status = "predicted";
    });
    this.select(rec.key);
    toast("Template placed: drag the points onto the person, then accept (Y).", "info");
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
    const boxes = boxesToCarry(recs, pairs);
    const follow = boxesToFollow(recs, pairs, boxes);
    this.edit("move", recs, () => {
      for (const [rec, k] of pairs) {
        rec.data.keypoints[k] = [rec.data.keypoints[k][0] + dx, rec.data.keypoints[k][1] + dy];
      }
      recs.forEach((rec, i) => {
        if (boxes[i]) rec.data.box = shiftedBox(boxes[i], dx, dy);
        else if (follow[i]) rec.data.box = tightBox(rec.data);
      });
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
}
