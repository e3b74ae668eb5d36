// Undo/redo of the annotation view. Every edit goes through `edit()`, which
// snapshots the touched records before and after, so undo/redo is uniform
// (creating = un-deleting a fresh record, deleting = setting `deleted`).
// Methods are mixed into AnnotationView (see annotate.js).

import { toast } from "./dom.js";

const UNDO_LIMIT = 500;

// me.js sets body[data-can] to the user's permissions on the item on screen.
const canEdit = () => {
  const can = document.body.dataset.can;
  return can === undefined || can.split(" ").includes("annotate");
};

/** Deep copy of the editable Instance fields of a record. */
export const copyData = (d) => ({
  keypoints: d.keypoints.map((p) => [p[0], p[1]]),
  visibility: d.visibility.slice(),
  keypoint_scores: d.keypoint_scores ? d.keypoint_scores.slice() : null,
  box: d.box ? d.box.slice() : null,
  score: d.score ?? null,
  source: d.source || "manual",
  status: d.status || "accepted",
  track_id: d.track_id ?? null,
});

export class HistoryMethods {
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
    if (!canEdit()) {
      // A role that cannot annotate here (me.js): undo at once, keep nothing to save.
      for (const snap of before) {
        const rec = this.record(snap.key);
        rec.data = copyData(snap.data);
        rec.deleted = snap.deleted;
        if (rec.deleted) this.selected.delete(rec.key);
      }
      if (this.activeKey !== null && !this.active()) this.activeKey = null;
      this.invalidate();
      this.updatePanel();
      toast(`Read only: your role cannot edit this item (${label} not saved).`, "error");
      return;
    }
    this.undoStack.push({ label, before, after });
    if (this.undoStack.length > UNDO_LIMIT) this.undoStack.shift();
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
}
