// Saving of the annotation view: autosave of dirty records with their version;
// a 409 keeps the local data and stores the server's copy in `conflict` until
// the user picks "keep mine" or "take theirs"; the save-status badge.
// Methods are mixed into AnnotationView (see annotate.js).

import { api, ApiError } from "./api.js";
import { toast } from "./dom.js";
import { copyData } from "./history.js";

const SAVE_DELAY_MS = 600;

export class SyncMethods {
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
      // The layout the keypoints are in: refused (409) once the template changed.
      template_version: this.project.template_version,
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
}
