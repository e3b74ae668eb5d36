// The video view (#/projects/{pid}/videos/{vid}?frame=F): the frame picture, the
// instances the frame shows (stored: solid; interpolated: dashed, hollow points) in the
// template colours, play/pause, frame steps, jump to a frame, the timeline, the track
// list with split and merge, and edits: dragging keypoints, visibility, mirror, copying
// the previous frame's skeleton, accepting predictions, each one undoable step that is
// autosaved as the track's keyframe on that frame (video_edit.js: the image editor's
// history.js and sync.js, so a conflict keeps yours and offers "keep mine" / "take
// theirs"). "Outside" ends a track's segment, "Track forward" propagates it N frames
// with a pose model. Frame pictures come from video_frames.js (sized to the view,
// cached, prefetched around the current frame).
//
// Keys (only here, so nothing clashes with the image editor's keys in input.js):
//   Space play/pause · "," / "." or Shift+←/→ one frame · Home / End first / last frame
//   C copy the selected track from the previous frame · V cycle visibility of the
//   selected points · M mirror · Y accept · Delete the selected stored instance
//   ←↑→↓ nudge 1 px · Esc clear the selection
//   Ctrl+Z undo · Ctrl+Shift+Z / Ctrl+Y redo

import { clear, el, toast } from "./dom.js";
import { Timeline } from "./timeline.js";
import { trackColor, videoApi } from "./video_api.js";
import { adopt, VideoEditMethods } from "./video_edit.js";
import { FrameStore } from "./video_frames.js";

const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;
const rgba = (c, a) => `rgba(${c[0]},${c[1]},${c[2]},${a})`;
const FRAME_QUALITY = 80;

export class VideoView {
  constructor(root, { project, vid, frame = 0, go }) {
    this.root = root;
    this.project = project;
    this.template = project.template;
    this.vid = vid;
    this.frame = frame;
    this.go = go;
    this.playing = false;
    this.tracks = [];
    this.selectedTrack = null;
    this.token = 0;
    this.perf = { frames: [], requests: [], openMs: null };
    this.image = null;
    this.alive = true;
    this.onKey = (e) => this.key(e);
    this.onUnload = (e) => {
      if (this.hasUnsaved()) {
        e.preventDefault();
        e.returnValue = "";
      }
    };
    this.initEditing();
  }

  async open(startedAt = performance.now()) {
    this.video = await videoApi.video(this.vid);
    this.frame = Math.min(Math.max(this.frame | 0, 0), this.video.frame_count - 1);
    this.build();
    const v = this.video;
    // The server scales frames down to the canvas' pixels (none for small videos).
    // Where the canvas has more pixels than the video's seek proxy (a high-DPI
    // screen), frames are asked for at the proxy's size, never below the CSS size:
    // a cold seek then decodes a few small frames instead of up to a GOP of big ones.
    let side = Math.max(this.canvas.width, this.canvas.height);
    const proxy = v.proxy && v.proxy.state !== "failed" ? Math.max(v.proxy.width, v.proxy.height) : null;
    if (proxy) side = Math.min(side, Math.max(proxy, this.cssW, this.cssH));
    const maxSide = side < Math.max(v.width, v.height) ? side : null;
    // localStorage "posekit.videoPrefetch" = "off": fetch only the frames shown (slow links).
    const prefetch = window.localStorage.getItem("posekit.videoPrefetch") !== "off";
    this.frames = new FrameStore((i) => videoApi.frameUrl(this.vid, i, { maxSide, quality: FRAME_QUALITY }), v.frame_count, {
      prefetch,
    });
    await this.refreshTracks();
    await this.show(this.frame);
    document.addEventListener("keydown", this.onKey);
    window.addEventListener("beforeunload", this.onUnload);
    this.perf.openMs = performance.now() - startedAt;
  }

  build() {
    const v = this.video;
    const button = (id, text, title, onclick) => el("button", { type: "button", id, title, onclick }, text);
    this.playButton = button("vv-play", "▶ Play", "Play / pause (Space)", () => this.toggle());
    this.frameInput = el("input", { type: "number", id: "vv-frame", min: 0, max: v.frame_count - 1, value: this.frame });
    this.frameInput.addEventListener("change", () => {
      // Enter jumps and hands the keys back to the view (steps, undo...).
      this.frameInput.blur();
      this.seek(Number(this.frameInput.value));
    });
    this.info = el("span", { id: "vv-info", class: "muted" });
    this.status = el("span", { id: "vv-status", role: "status" });
    this.saveStatus = el("span", { id: "vv-save", class: "save-status" });
    this.countInput = el("input", { type: "number", id: "vv-count", min: 1, max: 300, value: 10 });
    this.countInput.style.width = "4em";
    this.modelInput = el("input", { type: "text", id: "vv-model", value: "blazepose", size: 10, title: "pose model" });
    this.canvas = el("canvas", { id: "vv-canvas" });
    this.trackList = el("ul", { id: "vv-tracks", class: "vv-tracks" });
    this.mergeWith = el("select", { id: "vv-merge-with", title: "The track to merge into the selected one" });
    this.panel = el("div", { id: "vv-panel" });
    const head = el(
      "header",
      { class: "page-head" },
      el("a", { href: `#/projects/${this.project.id}`, text: "← Project" }),
      el("h1", { id: "video-name", text: v.file_name }),
      el("span", { class: "muted", text: `${v.width}×${v.height} · ${v.fps.toFixed(2)} fps · ${v.frame_count} frames` }),
    );
    const bar = el(
      "div",
      { class: "actions" },
      button("vv-prev", "◀ ,", "Previous frame (, or Shift+←)", () => this.step(-1)),
      this.playButton,
      button("vv-next", ". ▶", "Next frame (. or Shift+→)", () => this.step(1)),
      el("label", {}, "Frame ", this.frameInput),
      this.info,
      button("vv-copy", "Copy previous C", "Copy the selected track's skeleton from the previous frame (C)", () =>
        this.copyPrevious().catch((e) => this.fail(e)),
      ),
      button("vv-mirror", "Mirror M", "Swap left/right labels of the selected instance (M)", () => this.mirror()),
      button("vv-reject", "Reject X", "Reject the selected prediction, or all predictions of this frame (X)", () => this.reject()),
      button("vv-undo", "Undo", "Ctrl+Z", () => this.undo()),
      button("vv-redo", "Redo", "Ctrl+Shift+Z", () => this.redo()),
      button("vv-outside", "Outside", "End the selected track's segment on this frame", () => this.outside()),
      el("label", {}, "Propagate ", this.countInput, " frames with ", this.modelInput),
      button("vv-propagate", "Track forward", "Run the pose model on the next frames of the selected track", () =>
        this.propagate(),
      ),
      this.saveStatus,
      this.status,
    );
    const trackTools = el(
      "div",
      { class: "vv-track-tools" },
      button("vv-split", "Split here", "Split the selected track: from this frame on it is a new track", () => this.split()),
      el("div", {}, this.mergeWith, button("vv-merge", "Merge", "Move the chosen track into the selected one", () => this.merge())),
    );
    const side = el("aside", { class: "vv-side" }, el("h2", { text: "Tracks" }), this.trackList, trackTools, this.panel);
    const main = el("div", { class: "vv-main" }, this.canvas);
    const body = el("div", { class: "vv-body" }, main, side);
    Object.assign(body.style, { display: "flex", gap: "12px" });
    Object.assign(side.style, { minWidth: "180px", maxHeight: "80vh", overflowY: "auto" });
    clear(this.root).append(head, bar, body);
    this.timeline = new Timeline(main, v, { onSeek: (i) => this.seek(i) });
    const scale = Math.min(1, 900 / v.width, 520 / v.height);
    this.scale = Math.max(scale, 0.1);
    // Small videos are shown enlarged so that points can be dragged.
    if (v.width * this.scale < 480) this.scale = 480 / v.width;
    this.cssW = Math.round(v.width * this.scale);
    this.cssH = Math.round(v.height * this.scale);
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(this.cssW * dpr);
    this.canvas.height = Math.round(this.cssH * dpr);
    Object.assign(this.canvas.style, { width: `${this.cssW}px`, height: `${this.cssH}px`, background: "#000", cursor: "crosshair" });
    this.ctx = this.canvas.getContext("2d");
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    main.style.width = `${this.cssW}px`;
    this.canvas.addEventListener("mousedown", (e) => this.down(e));
    this.onMove = (e) => this.move(e);
    this.onUp = (e) => this.up(e);
    window.addEventListener("mousemove", this.onMove);
    window.addEventListener("mouseup", this.onUp);
    this.updateSaveStatus();
    this.updatePanel();
  }

  // ------------------------------------------------------------ frames
  async show(i) {
    const token = ++this.token;
    const t0 = performance.now();
    this.frames.setCenter(i);
    const seq = this.saveSeq;
    const [instances, picture] = await Promise.all([videoApi.instances(this.vid, i), this.frames.bitmap(i)]);
    if (token !== this.token || !this.alive) {
      picture.close();
      return false;
    }
    this.perf.requests.push(performance.now() - t0);
    if (this.perf.requests.length > 600) this.perf.requests.shift();
    if (this.pointer && this.pointer.frame !== i) this.pointer = null;
    if (this.image) this.image.close();
    this.image = picture;
    this.frame = i;
    this.reconcile(i, instances, seq);
    if (this.activeKey !== null && !this.active()) {
      // Keep working on the same track from frame to frame.
      const same = this.frameRecords().find((r) => r.data.track_id === this.selectedTrack);
      this.selected = new Map();
      this.activeKey = same ? same.key : null;
    }
    this.frameInput.value = String(i);
    const t = this.video.timestamps ? this.video.timestamps[i] : i / this.video.fps;
    this.info.textContent = `frame ${i} / ${this.video.frame_count - 1} · ${t.toFixed(3)} s`;
    this.timeline.setFrame(i);
    this.draw();
    this.updatePanel();
    return true;
  }

  seek(i) {
    if (!Number.isFinite(i)) return Promise.resolve(false);
    i = Math.min(Math.max(Math.round(i), 0), this.video.frame_count - 1);
    return this.show(i).catch((e) => this.fail(e));
  }

  step(d) {
    this.pause();
    return this.seek(this.frame + d);
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  play() {
    if (this.playing) return;
    if (this.frame >= this.video.frame_count - 1) this.frame = -1;
    this.playing = true;
    this.playButton.textContent = "❚❚ Pause";
    const period = 1000 / Math.max(this.video.fps, 1);
    const tick = async () => {
      if (!this.playing) return;
      const started = performance.now();
      const next = this.frame + 1;
      if (next >= this.video.frame_count) return this.pause();
      await this.show(next).catch((e) => this.fail(e));
      if (!this.playing) return;
      this.timer = setTimeout(tick, Math.max(0, period - (performance.now() - started)));
    };
    tick();
  }

  pause() {
    this.playing = false;
    clearTimeout(this.timer);
    if (this.playButton) this.playButton.textContent = "▶ Play";
  }

  // ------------------------------------------------------------ drawing
  draw() {
    const t0 = performance.now();
    const ctx = this.ctx;
    ctx.clearRect(0, 0, this.cssW, this.cssH);
    if (this.image) ctx.drawImage(this.image, 0, 0, this.cssW, this.cssH);
    for (const rec of this.frameRecords()) {
      if (rec.conflict && rec.conflict.current) this.drawSkeleton(rec.conflict.current, { ghost: true });
      this.drawSkeleton(rec.data, {
        on: rec.data.track_id !== null && rec.data.track_id === this.selectedTrack,
        interpolated: rec.interpolated,
        keyframe: rec.keyframe && !rec.dirty,
        chosen: this.selected.get(rec.key),
        tag: rec.interpolated ? "interp" : rec.dirty ? "edited" : rec.keyframe ? "key" : rec.data.status,
      });
    }
    this.perf.frames.push({ t: t0, drawMs: performance.now() - t0 });
    if (this.perf.frames.length > 600) this.perf.frames.shift();
  }

  drawSkeleton(d, { on = false, interpolated = false, keyframe = false, chosen = null, tag = "", ghost = false }) {
    const ctx = this.ctx;
    const s = this.scale;
    const kc = this.template.keypoint_colors;
    const ec = this.template.edge_colors;
    const vis = d.visibility;
    const p = d.keypoints;
    ctx.setLineDash(interpolated || ghost ? [5, 4] : []);
    ctx.lineWidth = on ? 3 : 2;
    this.template.edges.forEach(([a, b], n) => {
      if (!vis[a] || !vis[b]) return;
      ctx.strokeStyle = ghost ? "rgba(255,255,255,0.35)" : rgb(ec[n] || [200, 200, 200]);
      ctx.beginPath();
      ctx.moveTo(p[a][0] * s, p[a][1] * s);
      ctx.lineTo(p[b][0] * s, p[b][1] * s);
      ctx.stroke();
    });
    ctx.setLineDash([]);
    p.forEach(([x, y], k) => {
      if (!vis[k]) return;
      const color = kc[k] || [255, 255, 255];
      ctx.beginPath();
      ctx.arc(x * s, y * s, on ? 5 : 4, 0, 2 * Math.PI);
      if (ghost) {
        ctx.strokeStyle = rgba(color, 0.4);
        ctx.lineWidth = 1.5;
        ctx.stroke();
        return;
      }
      if (interpolated || vis[k] === 1) {
        ctx.fillStyle = "rgba(0,0,0,0.5)";
        ctx.fill();
        ctx.strokeStyle = rgb(color);
        ctx.lineWidth = 2;
        ctx.stroke();
      } else {
        ctx.fillStyle = rgb(color);
        ctx.fill();
        ctx.strokeStyle = keyframe ? "#fff" : "#000";
        ctx.lineWidth = 1.5;
        ctx.stroke();
      }
      if (chosen && chosen.has(k)) {
        ctx.beginPath();
        ctx.arc(x * s, y * s, 8, 0, 2 * Math.PI);
        ctx.strokeStyle = "#ff0";
        ctx.lineWidth = 2;
        ctx.stroke();
      }
    });
    // The track's id and state next to its first labeled point.
    const first = p.findIndex((_, k) => vis[k]);
    if (!ghost && first >= 0 && d.track_id !== null) {
      ctx.font = "12px sans-serif";
      ctx.fillStyle = trackColor(d.track_id);
      ctx.fillText(`#${d.track_id} ${tag}`, p[first][0] * s + 6, p[first][1] * s - 6);
    }
  }

  // ------------------------------------------------------------ tracks
  async refreshTracks() {
    this.tracks = await videoApi.tracks(this.vid);
    if (!this.tracks.some((t) => t.track_id === this.selectedTrack)) {
      this.selectedTrack = this.tracks.length ? this.tracks[0].track_id : null;
    }
    this.renderTracks();
  }

  /** The timeline rows change with saved keyframes: read the tracks again, soon. */
  tracksChanged() {
    clearTimeout(this.tracksTimer);
    this.tracksTimer = setTimeout(() => this.alive && this.refreshTracks().catch((e) => this.fail(e)), 150);
  }

  renderTracks() {
    this.trackList.replaceChildren(
      ...this.tracks.map((t) => {
        const swatch = el("span", { class: "swatch" });
        Object.assign(swatch.style, { display: "inline-block", width: "12px", height: "12px", background: trackColor(t.track_id), marginRight: "6px" });
        const on = t.track_id === this.selectedTrack;
        const item = el(
          "li",
          { dataset: { trackId: String(t.track_id) }, class: on ? "on" : "", onclick: () => this.selectTrack(t.track_id) },
          swatch,
          `#${t.track_id}${t.label ? ` ${t.label}` : ""} · ${t.keyframes.length} key`,
        );
        item.style.cursor = "pointer";
        if (on) item.style.fontWeight = "bold";
        return item;
      }),
    );
    const others = this.tracks.filter((t) => t.track_id !== this.selectedTrack);
    const keep = this.mergeWith.value;
    this.mergeWith.replaceChildren(
      ...others.map((t) => el("option", { value: String(t.track_id), text: `#${t.track_id}${t.label ? ` ${t.label}` : ""}` })),
    );
    if (others.some((t) => String(t.track_id) === keep)) this.mergeWith.value = keep;
    this.timeline.setTracks(this.tracks, this.selectedTrack);
  }

  selectTrack(id, { redraw = true } = {}) {
    const changed = id !== this.selectedTrack;
    this.selectedTrack = id;
    if (changed || redraw) this.renderTracks();
    if (!redraw) return;
    const rec = this.frameRecords().find((r) => r.data.track_id === id);
    if (rec && rec.key !== this.activeKey) this.select(rec.key);
    else this.invalidate();
  }

  /** A change of tracks on the server (not undoable): saves first, then reloads. */
  async structural(run) {
    this.pause();
    if (!(await this.flush())) {
      toast("Resolve the conflicts (or failed saves) first.", "error");
      return false;
    }
    try {
      const message = await run();
      this.resetRecords();
      await this.refreshTracks();
      await this.show(this.frame);
      this.setStatus(message, "saved");
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    }
  }

  split() {
    const track = this.selectedTrack;
    if (track === null) return toast("Select a track first.", "info");
    const frame = this.frame;
    return this.structural(async () => {
      const made = await videoApi.split(this.vid, track, frame);
      this.selectedTrack = made.track_id;
      return `track #${track} split at frame ${frame}: from here on it is track #${made.track_id}`;
    });
  }

  merge() {
    const track = this.selectedTrack;
    const other = Number(this.mergeWith.value);
    if (track === null || !this.mergeWith.value) return toast("Select a track and the one to merge into it.", "info");
    return this.structural(async () => {
      await videoApi.merge(this.vid, track, other);
      return `track #${other} merged into #${track}`;
    });
  }

  outside() {
    const track = this.selectedTrack;
    if (track === null) return toast("Select a track first.", "info");
    const frame = this.frame;
    return this.structural(async () => {
      await videoApi.setOutside(this.vid, track, frame, true);
      return `track #${track} outside from frame ${frame}`;
    });
  }

  propagate() {
    const track = this.selectedTrack;
    if (track === null) return toast("Select a track first.", "info");
    const count = Math.max(1, Math.min(300, Number(this.countInput.value) || 10));
    const body = { from_frame: this.frame, count, model: this.modelInput.value.trim() || "blazepose" };
    this.setStatus("tracking forward…", "saving");
    return this.structural(async () => {
      const out = await videoApi.propagate(this.vid, track, body);
      return `propagated to ${out.frames.length} frame(s)`;
    });
  }

  setStatus(text, state) {
    this.status.textContent = text;
    this.status.dataset.state = state;
  }

  fail(error) {
    this.setStatus(error.message, "error");
    toast(error.message, "error");
  }

  // ------------------------------------------------------------ keys
  key(e) {
    const target = e.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) return;
    const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    let handled = true;
    if (e.ctrlKey || e.metaKey) {
      if (k === "z" && e.shiftKey) this.redo();
      else if (k === "z") this.undo();
      else if (k === "y") this.redo();
      else handled = false;
    } else if (e.altKey) handled = false;
    else if (k === " ") this.toggle();
    else if (k === ",") this.step(-1);
    else if (k === ".") this.step(1);
    else if (e.shiftKey && k === "ArrowLeft") this.step(-1);
    else if (e.shiftKey && k === "ArrowRight") this.step(1);
    else if (k === "ArrowLeft") this.nudge(-1, 0);
    else if (k === "ArrowRight") this.nudge(1, 0);
    else if (k === "ArrowUp") this.nudge(0, -1);
    else if (k === "ArrowDown") this.nudge(0, 1);
    else if (k === "Home") this.step(-this.frame);
    else if (k === "End") this.step(this.video.frame_count - 1 - this.frame);
    else if (k === "c") this.copyPrevious().catch((error) => this.fail(error));
    else if (k === "v") this.cycleVisibility(this.selectedPairs());
    else if (k === "m") this.mirror();
    else if (k === "y") this.accept();
    else if (k === "x" || k === "n") this.reject();
    else if (k === "Delete" || k === "Backspace") this.deleteActive();
    else if (k === "Escape") this.clearSelection();
    else handled = false;
    if (handled) e.preventDefault();
  }

  // ------------------------------------------------------------ test hooks
  stateForTests() {
    return {
      kind: "video",
      frame: this.frame,
      playing: this.playing,
      selectedTrack: this.selectedTrack,
      activeKey: this.activeKey,
      selected: [...this.selected].map(([key, set]) => [key, [...set]]),
      instances: this.frameRecords().map((r) => ({
        ...r.data,
        key: r.key,
        id: r.id,
        version: r.version,
        interpolated: r.interpolated,
        keyframe: r.keyframe,
        dirty: r.dirty,
        conflict: r.conflict ? r.conflict.current : null,
        deleted: false,
      })),
      tracks: this.tracks,
      saveState: this.saveStatus.dataset.state,
      undo: this.undoStack.length,
      redo: this.redoStack.length,
      requestMs: this.perf.requests.slice(),
      frames: { ...this.frames.stats, cached: this.frames.blobs.size, bytes: this.frames.bytes, idle: this.frames.idle() },
    };
  }

  /** Client (CSS px) position of keypoint k of the track's instance on this frame. */
  clientPoint(trackId, k) {
    const rec = this.frameRecords().find((r) => r.data.track_id === trackId);
    if (!rec) return null;
    return this.clientFromImage(rec.data.keypoints[k][0], rec.data.keypoints[k][1]);
  }

  clientFromImage(x, y) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: rect.left + x * this.scale, y: rect.top + y * this.scale };
  }

  destroy() {
    this.pause();
    this.token++;
    this.alive = false;
    document.removeEventListener("keydown", this.onKey);
    window.removeEventListener("beforeunload", this.onUnload);
    window.removeEventListener("mousemove", this.onMove);
    window.removeEventListener("mouseup", this.onUp);
    clearTimeout(this.tracksTimer);
    // Edits not sent yet still go (the requests outlive the view).
    clearTimeout(this.saveTimer);
    if (this.hasUnsaved()) this.saveAll();
    if (this.frames) this.frames.destroy();
    if (this.image) this.image.close();
    if (this.timeline) this.timeline.destroy();
  }
}

adopt(VideoView, VideoEditMethods);
