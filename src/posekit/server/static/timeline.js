// The video timeline: a thumbnail strip, one row per track (in the track's colour)
// with a marker per keyframe (outside marks as gaps), a playhead; a click seeks.

import { el } from "./dom.js";
import { trackColor, videoApi } from "./video_api.js";

export class Timeline {
  constructor(host, video, { onSeek }) {
    this.video = video;
    this.onSeek = onSeek;
    this.selected = null;
    this.strip = el("img", { class: "tl-strip", id: "tl-strip", alt: "", draggable: "false" });
    this.rows = el("div", { class: "tl-rows", id: "tl-rows" });
    this.head = el("div", { class: "tl-head", id: "tl-head" });
    this.node = el("div", { class: "timeline", id: "timeline" }, this.strip, this.rows, this.head);
    Object.assign(this.node.style, { position: "relative", userSelect: "none", cursor: "pointer", margin: "6px 0" });
    Object.assign(this.strip.style, { display: "block", width: "100%", height: "40px", objectFit: "fill", background: "#222" });
    Object.assign(this.head.style, { position: "absolute", top: "0", bottom: "0", width: "2px", background: "#ff0", pointerEvents: "none" });
    this.node.addEventListener("mousedown", (e) => this.seekAt(e));
    host.append(this.node);
    // Evenly spaced thumbnails (one JPEG, cached by the server and the browser).
    this.strip.src = videoApi.thumbnailsUrl(video.id, Math.min(40, video.frame_count), 40);
  }

  /** x position (percent) of a frame. */
  pos(i) {
    const n = Math.max(this.video.frame_count - 1, 1);
    return `${(100 * i) / n}%`;
  }

  frameAt(clientX) {
    const rect = this.node.getBoundingClientRect();
    const t = Math.min(Math.max((clientX - rect.left) / Math.max(rect.width, 1), 0), 1);
    return Math.round(t * (this.video.frame_count - 1));
  }

  seekAt(e) {
    e.preventDefault();
    this.onSeek(this.frameAt(e.clientX));
  }

  setTracks(tracks, selected) {
    this.selected = selected;
    this.rows.replaceChildren(
      ...tracks.map((t) => {
        const row = el("div", { class: "tl-row", dataset: { trackId: String(t.track_id) } });
        const on = t.track_id === selected;
        Object.assign(row.style, {
          position: "relative", height: on ? "14px" : "9px", marginTop: "2px",
          background: on ? "#333" : "#1a1a1a",
        });
        const color = trackColor(t.track_id);
        // The span the track covers (first to last stored frame), faint.
        if (t.frames.length) {
          const span = el("div", { class: "tl-span" });
          const a = t.frames[0];
          const b = Math.max(...t.frames, ...t.keyframes);
          Object.assign(span.style, {
            position: "absolute", top: "3px", bottom: "3px", left: this.pos(a),
            width: `calc(${this.pos(b)} - ${this.pos(a)} + 2px)`, background: color, opacity: "0.35",
          });
          row.append(span);
        }
        for (const k of t.keyframes) {
          const mark = el("div", { class: "tl-key", dataset: { frame: String(k) }, title: `keyframe ${k}` });
          Object.assign(mark.style, {
            position: "absolute", top: "0", bottom: "0", left: this.pos(k), width: "3px",
            marginLeft: "-1px", background: color,
          });
          row.append(mark);
        }
        for (const k of t.outside) {
          const mark = el("div", { class: "tl-outside", dataset: { frame: String(k) }, title: `outside ${k}` });
          Object.assign(mark.style, {
            position: "absolute", top: "0", bottom: "0", left: this.pos(k), width: "3px",
            background: "#888", opacity: "0.8",
          });
          row.append(mark);
        }
        return row;
      }),
    );
  }

  setFrame(i) {
    this.head.style.left = this.pos(i);
  }

  destroy() {
    this.node.remove();
  }
}
