// Editing on video frames with the image editor's own machinery. Every instance a
// frame shows is a record like the annotation view's ({key, id, version, data,
// deleted, dirty, stamp, conflict}) plus its `frame` and whether it is `interpolated`
// (not stored: computed from the track's keyframes). So history.js (undo/redo),
// sync.js (autosave, a 409 keeps yours and offers "keep mine" / "take theirs") and
// the edits of edits.js (visibility, mirror, nudge) run unchanged; what differs is
// saving: a record is stored as its track's keyframe on its frame (PUT
// .../tracks/{t}/keyframes/{frame}, with its version once stored), and a record
// taken back to its interpolated state (undo of the first edit) deletes that
// keyframe again; if the frame was an outside mark of the track before the record was
// made there (C on an outside frame), the mark is set again, so undo restores the
// outside state. X rejects stored instances (a prediction a person says is wrong):
// their status becomes "rejected" (PUT /api/instances/{id}, with its version), the frame
// no longer shows them, and undo sets the status back. A save carries exactly what it
// expects to overwrite: the version of the stored instance it was read from, or 0 when
// it showed an interpolated frame (a keyframe stored there meanwhile is then a 409
// conflict, resolved like any other). Undo and redo first go to the frame of the step.
// Methods are mixed into VideoView (see video_view.js).

import { api } from "./api.js";
import { clear, el, toast } from "./dom.js";
import { boxesToCarry, EditMethods, NEXT_VIS, shiftedBox } from "./edits.js";
import { copyData, HistoryMethods } from "./history.js";
import { PanelMethods } from "./panel.js";
import { SyncMethods } from "./sync.js";
import { videoApi } from "./video_api.js";

const HIT_PX = 10;
const VIS_LABEL = { 2: "visible", 1: "occluded", 0: "not labeled" };

/** Copy `source`'s methods onto `target`'s prototype, except those `target` has. */
export function adopt(target, source, names = Object.getOwnPropertyNames(source.prototype)) {
  for (const name of names) {
    if (name === "constructor" || Object.prototype.hasOwnProperty.call(target.prototype, name)) continue;
    const descriptor = Object.getOwnPropertyDescriptor(source.prototype, name);
    if (!descriptor) throw new Error(`${source.name} has no method ${name}`);
    Object.defineProperty(target.prototype, name, descriptor);
  }
}

export class VideoEditMethods {
  // ------------------------------------------------------------ records
  initEditing() {
    this.K = this.template.keypoints.length;
    this.records = [];
    this.nextKey = 1;
    this.selected = new Map(); // record key -> Set of keypoint indices
    this.activeKey = null;
    this.undoStack = [];
    this.redoStack = [];
    this.pointer = null;
    this.saving = false;
    this.saveError = null;
    this.saveTimer = null;
    this.saveSeq = 0;
    this.drawRequested = false;
  }

  makeRecord(inst, frame) {
    const rec = { key: this.nextKey++, frame, stamp: 0, dirty: false, conflict: null, savedSeq: 0 };
    this.takeServer(rec, inst);
    this.records.push(rec);
    return rec;
  }

  takeServer(rec, inst) {
    Object.assign(rec, {
      id: inst.interpolated ? null : inst.id,
      version: inst.interpolated ? 0 : inst.version,
      data: copyData(inst),
      deleted: false,
      interpolated: Boolean(inst.interpolated),
      keyframe: Boolean(inst.keyframe),
      savedStatus: inst.interpolated ? null : inst.status,
    });
  }

  /**
   * Match the instances the server shows on `frame` with the records held for it:
   * records with unsaved edits (or saved after `seq`, when the instances were asked
   * for) keep theirs; the others take the server's. A track's instance is matched by
   * its track, an untracked one by id.
   */
  reconcile(frame, instances, seq) {
    const mine = this.records.filter((r) => r.frame === frame);
    const used = new Set();
    const keeps = (r) => r.dirty || r.conflict || r.savedSeq > seq;
    for (const inst of instances) {
      const tracked = inst.track_id !== null && inst.track_id !== undefined;
      // A rejected record stays itself (the frame shows the track's interpolation in
      // its place): undo of the rejection needs its id and version.
      let rec = mine.find(
        (r) =>
          !used.has(r) &&
          r.data.status !== "rejected" &&
          (tracked ? r.data.track_id === inst.track_id : r.id !== null && r.id === inst.id),
      );
      if (!rec) rec = this.makeRecord(inst, frame);
      else if (!keeps(rec)) this.takeServer(rec, inst);
      used.add(rec);
    }
    for (const rec of mine) {
      if (used.has(rec) || keeps(rec) || rec.deleted || rec.data.status === "rejected") continue;
      rec.deleted = true; // gone on the server
      rec.id = null;
      rec.version = 0;
    }
    this.prune();
  }

  /** Forget records of other frames that hold nothing unsaved and no undo step names. */
  prune() {
    if (this.records.length < 200) return;
    const named = new Set();
    for (const step of [...this.undoStack, ...this.redoStack]) for (const s of step.before) named.add(s.key);
    this.records = this.records.filter(
      (r) => r.frame === this.frame || r.dirty || r.conflict || named.has(r.key) || r.key === this.activeKey,
    );
  }

  /** Drop every record (after a split, merge, outside or propagation changed tracks). */
  resetRecords() {
    this.records = [];
    this.undoStack = [];
    this.redoStack = [];
    this.selected = new Map();
    this.activeKey = null;
  }

  /** The records the frame shows (rejected ones are kept for undo, not shown). */
  frameRecords() {
    return this.records.filter((r) => r.frame === this.frame && !r.deleted && r.data.status !== "rejected");
  }

  live() {
    return this.frameRecords();
  }

  record(key) {
    return this.records.find((r) => r.key === key) || null;
  }

  active() {
    const rec = this.record(this.activeKey);
    return rec && !rec.deleted && rec.frame === this.frame ? rec : null;
  }

  // ------------------------------------------------------------ selection
  select(key, kps = []) {
    this.selected = new Map();
    if (key !== null && key !== undefined) this.selected.set(key, new Set(kps));
    this.activeKey = key;
    const rec = this.record(key);
    if (rec && rec.data.track_id !== null) this.selectTrack(rec.data.track_id, { redraw: false });
    this.afterSelection();
  }

  toggleKeypoint(key, k) {
    if (this.activeKey !== key) this.selected = new Map();
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
      if (!rec || rec.deleted || rec.frame !== this.frame) continue;
      for (const k of set) pairs.push([rec, k]);
    }
    return pairs;
  }

  invalidate() {
    if (this.drawRequested || !this.ctx) return;
    this.drawRequested = true;
    requestAnimationFrame(() => {
      this.drawRequested = false;
      if (this.ctx) this.draw();
    });
  }

  // ------------------------------------------------------------ history
  /** history.js's edit; whatever a person edits is a keyframe from then on. */
  edit(label, recs, mutate) {
    HistoryMethods.prototype.edit.call(this, label, recs, () => {
      mutate();
      for (const rec of recs) rec.interpolated = false;
    });
  }

  snapshot(rec) {
    return { key: rec.key, data: copyData(rec.data), deleted: rec.deleted, interpolated: rec.interpolated };
  }

  restore(snapshots) {
    for (const s of snapshots) {
      const rec = this.record(s.key);
      if (rec) rec.interpolated = s.interpolated;
    }
    HistoryMethods.prototype.restore.call(this, snapshots);
  }

  undo() {
    return this.historyStep(this.undoStack, HistoryMethods.prototype.undo);
  }

  redo() {
    return this.historyStep(this.redoStack, HistoryMethods.prototype.redo);
  }

  async historyStep(stack, apply) {
    const step = stack[stack.length - 1];
    if (!step) return toast("Nothing to undo or redo.", "info");
    const rec = this.record(step.before[0].key);
    if (rec && rec.frame !== this.frame) {
      this.pause();
      await this.seek(rec.frame);
      if (stack[stack.length - 1] !== step) return;
    }
    apply.call(this);
    this.setStatus(`${stack === this.undoStack ? "undone" : "redone"}: ${step.label}`, "info");
  }

  // ------------------------------------------------------------ saving
  payload(rec) {
    const d = rec.data;
    return {
      keypoints: d.keypoints,
      visibility: d.visibility,
      keypoint_scores: d.keypoint_scores,
      box: d.box,
      score: d.score,
      // A person set it: the store keeps it as an accepted keyframe.
      source: "manual",
      status: "accepted",
      track_id: d.track_id,
      template_version: this.project.template_version,
    };
  }

  /** sync.js's saveAll; once the view is closed, one last try (no retries). */
  saveAll() {
    if (!this.alive) {
      if (this.lastTry) return Promise.resolve();
      if (!this.saving) this.lastTry = true;
    }
    return SyncMethods.prototype.saveAll.call(this);
  }

  /** sync.js's saveRecord for a video frame: store the keyframe, or delete it (and
   * set the outside mark again where the record replaced one), or change only the
   * review status (rejecting, or undoing a rejection). */
  async saveRecord(rec) {
    const stamp = rec.stamp;
    try {
      if (rec.deleted || rec.interpolated) {
        if (rec.id !== null) await api.deleteInstance(rec.id, rec.version);
        rec.id = null;
        rec.version = 0;
        rec.keyframe = false;
        rec.savedStatus = null;
        if (rec.replacedOutside) await videoApi.setOutside(this.vid, rec.data.track_id, rec.frame, true);
      } else if (rec.id !== null && (rec.data.status === "rejected" || rec.savedStatus === "rejected")) {
        const saved = await api.updateInstance(rec.id, { version: rec.version, status: rec.data.status });
        rec.version = saved.version;
        rec.savedStatus = saved.status;
      } else {
        const body = this.payload(rec);
        // The version read; 0: "nothing stored here" (an interpolated frame), so a
        // keyframe someone stored there meanwhile is a conflict, not overwritten.
        body.version = rec.version || 0;
        const saved = await videoApi.setKeyframe(this.vid, rec.data.track_id, rec.frame, body);
        rec.id = saved.id;
        rec.version = saved.version;
        rec.keyframe = true;
        rec.savedStatus = saved.status;
        rec.data.status = saved.status;
        rec.data.source = saved.source;
      }
      rec.savedSeq = ++this.saveSeq;
      if (rec.stamp === stamp) rec.dirty = false;
      this.tracksChanged();
    } catch (error) {
      if (error.status === 409 || error.status === 404) {
        rec.conflict = { current: error.status === 409 ? (error.body && error.body.current) || null : null };
        if ((rec.deleted || rec.interpolated) && !rec.conflict.current) {
          // Gone here and there: both sides agree.
          Object.assign(rec, { conflict: null, id: null, version: 0, dirty: false });
        }
        this.setStatus("Conflict: this frame was changed elsewhere (see the side panel).", "conflict");
        this.invalidate();
        return;
      }
      throw error;
    }
  }

  /** sync.js's keepMine / takeTheirs; a record that expected nothing stored takes
   * the id of the instance it met, so deleting or rejecting it later reaches it. */
  keepMine(rec) {
    const current = rec.conflict && rec.conflict.current;
    SyncMethods.prototype.keepMine.call(this, rec);
    if (current) rec.id = current.id;
  }

  takeTheirs(rec) {
    const current = rec.conflict && rec.conflict.current;
    SyncMethods.prototype.takeTheirs.call(this, rec);
    if (current) Object.assign(rec, { id: current.id, savedStatus: current.status });
  }

  // ------------------------------------------------------------ pointer
  imagePoint(e) {
    const rect = this.canvas.getBoundingClientRect();
    return [(e.clientX - rect.left) / this.scale, (e.clientY - rect.top) / this.scale];
  }

  /** The nearest labeled keypoint of an editable (tracked) instance under the pointer. */
  hit(e) {
    const [x, y] = this.imagePoint(e);
    let best = null;
    for (const rec of this.frameRecords()) {
      if (rec.data.track_id === null) continue;
      rec.data.keypoints.forEach(([px, py], k) => {
        if (!rec.data.visibility[k]) return;
        const d = Math.hypot(px - x, py - y) * this.scale;
        if (d <= HIT_PX && (!best || d < best.d)) best = { rec, k, d };
      });
    }
    return best;
  }

  down(e) {
    if (e.button !== 0) return;
    const found = this.hit(e);
    if (!found) {
      if (!e.shiftKey) this.clearSelection();
      return;
    }
    e.preventDefault();
    this.pause();
    const { rec, k } = found;
    if (e.shiftKey) return this.toggleKeypoint(rec.key, k);
    const set = this.selected.get(rec.key);
    if (this.activeKey !== rec.key || !set || !set.has(k)) this.select(rec.key, [k]);
    const pairs = this.selectedPairs().filter(([r, j]) => r.data.visibility[j]);
    const recs = [...new Set(pairs.map(([r]) => r))];
    this.pointer = {
      kind: "drag",
      frame: this.frame,
      start: this.imagePoint(e),
      pairs,
      recs,
      keys: new Set(recs.map((r) => r.key)),
      before: recs.map((r) => this.snapshot(r)),
      origin: pairs.map(([r, j]) => [...r.data.keypoints[j]]),
      boxes: boxesToCarry(recs, pairs),
      moved: false,
    };
  }

  move(e) {
    const p = this.pointer;
    if (!p || p.kind !== "drag") return;
    if (p.frame !== this.frame) {
      this.pointer = null;
      return;
    }
    const [x, y] = this.imagePoint(e);
    const dx = x - p.start[0];
    const dy = y - p.start[1];
    p.pairs.forEach(([r, j], n) => {
      r.data.keypoints[j] = [p.origin[n][0] + dx, p.origin[n][1] + dy];
    });
    p.recs.forEach((r, n) => {
      if (p.boxes[n]) r.data.box = shiftedBox(p.boxes[n], dx, dy);
    });
    p.moved = true;
    this.invalidate();
  }

  up() {
    const p = this.pointer;
    this.pointer = null;
    if (!p || p.kind !== "drag" || !p.moved) return;
    if (p.frame !== this.frame) return;
    for (const rec of p.recs) rec.interpolated = false;
    this.commit("move", p.before, p.recs.map((r) => this.snapshot(r)));
  }

  // ------------------------------------------------------------ video edits
  /** C: the selected track's skeleton of the previous frame, as this frame's keyframe. */
  async copyPrevious() {
    const frame = this.frame;
    const trackId = this.selectedTrack;
    if (trackId === null) return toast("Select a track first.", "info");
    if (frame === 0) return toast("There is no previous frame.", "info");
    const local = this.records.find(
      (r) => r.frame === frame - 1 && !r.deleted && r.data.track_id === trackId && (r.dirty || r.conflict),
    );
    const source = local
      ? local.data
      : (await videoApi.instances(this.vid, frame - 1)).find((i) => i.track_id === trackId);
    if (this.frame !== frame) return;
    if (!source) return toast(`Track #${trackId} shows nothing on frame ${frame - 1}.`, "info");
    let rec = this.records.find(
      (r) => r.frame === frame && r.data.track_id === trackId && r.data.status !== "rejected",
    );
    if (!rec) {
      rec = this.makeRecord({ ...source, id: null, interpolated: true, track_id: trackId }, frame);
      rec.deleted = true; // appears through the undoable edit
      // Copied onto the frame where a segment of the track ends: storing the keyframe
      // removes that outside mark, taking the record away (undo) sets it again.
      const track = (this.tracks || []).find((t) => t.track_id === trackId);
      rec.replacedOutside = Boolean(track && track.outside.includes(frame));
    }
    this.edit("copy previous frame", [rec], () => {
      rec.deleted = false;
      rec.data = copyData({ ...source, track_id: trackId, source: "manual", status: "accepted" });
    });
    this.select(rec.key);
    this.setStatus(`copied track #${trackId} from frame ${frame - 1}`, "info");
  }

  /** Y: accept the selected prediction, or every prediction on the frame. */
  accept() {
    const rec = this.active();
    const targets = (rec ? [rec] : this.frameRecords()).filter(
      (r) => r.data.track_id !== null && r.data.status !== "accepted",
    );
    if (!targets.length) return toast("Nothing to accept on this frame.", "info");
    this.edit("accept", targets, () => {
      for (const r of targets) r.data.status = "accepted";
    });
  }

  /** X: reject the selected stored instance (a wrong prediction, or a keyframe), or
   * every prediction of the frame; the frame then shows what the track's keyframes
   * interpolate there (Outside ends the track instead). */
  reject() {
    const rec = this.active();
    if (rec && rec.interpolated) return toast("Nothing stored here to reject (Outside ends the track).", "info");
    const targets = (rec ? [rec] : this.frameRecords().filter((r) => r.data.status === "predicted")).filter(
      (r) => r.id !== null && !r.interpolated,
    );
    if (!targets.length) return toast("Nothing to reject on this frame.", "info");
    this.edit("reject", targets, () => {
      for (const r of targets) r.data.status = "rejected";
    });
    this.clearSelection();
  }

  /** Delete: remove the selected stored instance (keyframe or prediction) of this
   * frame; the frame then shows what the track's keyframes interpolate. */
  deleteActive() {
    const rec = this.active();
    if (!rec) return toast("Select an instance to delete.", "info");
    if (rec.interpolated) return toast("Nothing stored here to delete (Outside ends the track).", "info");
    this.edit("delete instance", [rec], () => {
      rec.deleted = true;
    });
    this.clearSelection();
  }

  // ------------------------------------------------------------ side panel
  /** Conflict boxes, then the keypoints of the selected instance with their visibility. */
  updatePanel() {
    if (!this.panel) return;
    const panel = clear(this.panel);
    for (const rec of this.records.filter((r) => r.conflict)) {
      const box = this.conflictPanel(rec);
      box.dataset.frame = String(rec.frame);
      box.prepend(el("div", { class: "muted", text: `frame ${rec.frame} · track #${rec.data.track_id}` }));
      panel.append(box);
    }
    const rec = this.active();
    if (!rec) {
      panel.append(el("p", { class: "hint", text: "Click a keypoint to select it (Shift+click: more)." }));
      return;
    }
    const d = rec.data;
    const chosen = this.selected.get(rec.key) || new Set();
    const state = rec.interpolated ? "interpolated" : rec.keyframe ? "keyframe" : d.status;
    panel.append(el("h3", { text: `Track #${d.track_id} · ${state}` }));
    const table = el("table", { class: "keypoints", id: "vv-keypoints" });
    this.template.keypoints.forEach((name, k) => {
      const v = d.visibility[k];
      const badge = el(
        "button",
        {
          type: "button",
          class: `vis vis-${v}`,
          title: "Click to cycle visible → occluded → not labeled (V on selected points)",
          dataset: { k: String(k) },
          onclick: (e) => {
            e.stopPropagation();
            this.setVisibility(rec, k, NEXT_VIS[d.visibility[k]]);
          },
        },
        VIS_LABEL[v],
      );
      table.append(
        el(
          "tr",
          {
            class: `${chosen.has(k) ? "selected " : ""}${v ? "" : "missing"}`,
            dataset: { k: String(k) },
            onclick: () => v && this.select(rec.key, [k]),
          },
          el("td", { class: "kp-name", text: name }),
          el("td", {}, badge),
        ),
      );
    });
    panel.append(table);
  }
}

adopt(VideoEditMethods, EditMethods, ["mirror", "cycleVisibility", "setVisibility", "nudge"]);
adopt(VideoEditMethods, PanelMethods, ["conflictPanel"]);
adopt(VideoEditMethods, HistoryMethods); // edit, snapshot, restore, undo, redo: above
adopt(VideoEditMethods, SyncMethods); // saveAll, saveRecord, payload: above
