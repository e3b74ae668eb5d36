// The video view (#/projects/{pid}/videos/{vid}?frame=F): the frame image, the
// instances the frame shows (stored: solid; interpolated: dashed, hollow points) in the
// template colours, play/pause, frame steps, jump to a frame, the timeline, the track
// list, and edits through the video API: dragging a keypoint stores the frame as a
// keyframe of its track (409: a conflict message, the frame is read again), "outside"
// ends a track's segment, "propagate" tracks forward N frames with a pose model.
//
// Keys (only here, so nothing clashes with the image editor's keys in input.js):
//   Space play/pause · "," / "." or Shift+←/→ one frame · Home / End first / last frame.

import { clear, el, toast } from "./dom.js";
import { Timeline } from "./timeline.js";
import { trackColor, videoApi } from "./video_api.js";

const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;
const HIT_PX = 10;
const INSTANCE_FIELDS = ["keypoints", "visibility", "keypoint_scores", "box", "score", "source", "status", "track_id"];

export class VideoView {
  constructor(root, { project, vid, frame = 0, go }) {
    this.root = root;
    this.project = project;
    this.template = project.template;
    this.vid = vid;
    this.frame = frame;
    this.go = go;
    this.playing = false;
    this.instances = [];
    this.tracks = [];
    this.selectedTrack = null;
    this.drag = null;
    this.token = 0;
    this.perf = { frames: [], requests: [], openMs: null };
    this.image = null;
    this.onKey = (e) => this.key(e);
  }

  async open(startedAt = performance.now()) {
    this.video = await videoApi.video(this.vid);
    this.frame = Math.min(Math.max(this.frame | 0, 0), this.video.frame_count - 1);
    this.build();
    await this.refreshTracks();
    await this.show(this.frame);
    document.addEventListener("keydown", this.onKey);
    this.perf.openMs = performance.now() - startedAt;
  }

  build() {
    const v = this.video;
    const button = (id, text, title, onclick) => el("button", { type: "button", id, title, onclick }, text);
    this.playButton = button("vv-play", "▶ Play", "Play / pause (Space)", () => this.toggle());
    this.frameInput = el("input", { type: "number", id: "vv-frame", min: 0, max: v.frame_count - 1, value: this.frame });
    this.frameInput.addEventListener("change", () => this.seek(Number(this.frameInput.value)));
    this.info = el("span", { id: "vv-info", class: "muted" });
    this.status = el("span", { id: "vv-status", role: "status" });
    this.countInput = el("input", { type: "number", id: "vv-count", min: 1, max: 300, value: 10 });
    this.countInput.style.width = "4em";
    this.modelInput = el("input", { type: "text", id: "vv-model", value: "blazepose", size: 10, title: "pose model" });
    this.canvas = el("canvas", { id: "vv-canvas" });
    this.trackList = el("ul", { id: "vv-tracks", class: "vv-tracks" });
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
      button("vv-outside", "Outside", "End the selected track's segment on this frame", () => this.outside()),
      el("label", {}, "Propagate ", this.countInput, " frames with ", this.modelInput),
      button("vv-propagate", "Track forward", "Run the pose model on the next frames of the selected track", () =>
        this.propagate(),
      ),
      this.status,
    );
    const side = el("aside", { class: "vv-side" }, el("h2", { text: "Tracks" }), this.trackList);
    const main = el("div", { class: "vv-main" }, this.canvas);
    const body = el("div", { class: "vv-body" }, main, side);
    Object.assign(body.style, { display: "flex", gap: "12px" });
    Object.assign(side.style, { minWidth: "160px" });
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
  }

  // ------------------------------------------------------------ frames
  async show(i) {
    const token = ++this.token;
    const t0 = performance.now();
    const image = new Image();
    image.src = videoApi.frameUrl(this.vid, i);
    const [instances] = await Promise.all([videoApi.instances(this.vid, i), image.decode()]);
    if (token !== this.token) return false;
    this.perf.requests.push(performance.now() - t0);
    this.frame = i;
    this.image = image;
    this.instances = instances;
    this.drag = null;
    this.frameInput.value = String(i);
    const t = this.video.timestamps ? this.video.timestamps[i] : i / this.video.fps;
    this.info.textContent = `frame ${i} / ${this.video.frame_count - 1} · ${t.toFixed(3)} s`;
    this.timeline.setFrame(i);
    this.draw();
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
    const s = this.scale;
    ctx.clearRect(0, 0, this.cssW, this.cssH);
    if (this.image) ctx.drawImage(this.image, 0, 0, this.cssW, this.cssH);
    const kc = this.template.keypoint_colors;
    const ec = this.template.edge_colors;
    for (const inst of this.instances) {
      const on = inst.track_id === this.selectedTrack;
      const vis = inst.visibility;
      const p = inst.keypoints;
      ctx.setLineDash(inst.interpolated ? [5, 4] : []);
      ctx.lineWidth = on ? 3 : 2;
      this.template.edges.forEach(([a, b], n) => {
        if (!vis[a] || !vis[b]) return;
        ctx.strokeStyle = rgb(ec[n] || [200, 200, 200]);
        ctx.beginPath();
        ctx.moveTo(p[a][0] * s, p[a][1] * s);
        ctx.lineTo(p[b][0] * s, p[b][1] * s);
        ctx.stroke();
      });
      ctx.setLineDash([]);
      p.forEach(([x, y], k) => {
        if (!vis[k]) return;
        ctx.beginPath();
        ctx.arc(x * s, y * s, on ? 5 : 4, 0, 2 * Math.PI);
        const color = rgb(kc[k] || [255, 255, 255]);
        if (inst.interpolated || vis[k] === 1) {
          ctx.fillStyle = "rgba(0,0,0,0.5)";
          ctx.fill();
          ctx.strokeStyle = color;
          ctx.lineWidth = 2;
          ctx.stroke();
        } else {
          ctx.fillStyle = color;
          ctx.fill();
          ctx.strokeStyle = inst.keyframe ? "#fff" : "#000";
          ctx.lineWidth = 1.5;
          ctx.stroke();
        }
      });
      // The track's id and state next to its first labeled point.
      const first = p.findIndex((_, k) => vis[k]);
      if (first >= 0 && inst.track_id !== null) {
        const tag = inst.keyframe ? "key" : inst.interpolated ? "interp" : inst.status;
        ctx.font = "12px sans-serif";
        ctx.fillStyle = trackColor(inst.track_id);
        ctx.fillText(`#${inst.track_id} ${tag}`, p[first][0] * s + 6, p[first][1] * s - 6);
      }
    }
    this.perf.frames.push({ t: t0, drawMs: performance.now() - t0 });
    if (this.perf.frames.length > 600) this.perf.frames.shift();
  }

  // ------------------------------------------------------------ tracks
  async refreshTracks() {
    this.tracks = await videoApi.tracks(this.vid);
    if (this.selectedTrack === null && this.tracks.length) this.selectedTrack = this.tracks[0].track_id;
    this.trackList.replaceChildren(
      ...this.tracks.map((t) => {
        const swatch = el("span", { class: "swatch" });
        Object.assign(swatch.style, { display: "inline-block", width: "12px", height: "12px", background: trackColor(t.track_id), marginRight: "6px" });
        const item = el(
          "li",
          {
            dataset: { trackId: String(t.track_id) },
            class: t.track_id === this.selectedTrack ? "on" : "",
            onclick: () => this.selectTrack(t.track_id),
          },
          swatch,
          `#${t.track_id}${t.label ? ` ${t.label}` : ""} · ${t.keyframes.length} key`,
        );
        item.style.cursor = "pointer";
        if (t.track_id === this.selectedTrack) item.style.fontWeight = "bold";
        return item;
      }),
    );
    this.timeline.setTracks(this.tracks, this.selectedTrack);
  }

  selectTrack(id) {
    this.selectedTrack = id;
    this.refreshTracks().catch((e) => this.fail(e));
    this.draw();
  }

  // ------------------------------------------------------------ editing
  imagePoint(e) {
    const rect = this.canvas.getBoundingClientRect();
    return [(e.clientX - rect.left) / this.scale, (e.clientY - rect.top) / this.scale];
  }

  hit(e) {
    const [x, y] = this.imagePoint(e);
    let best = null;
    this.instances.forEach((inst, n) => {
      if (inst.track_id === null) return;
      inst.keypoints.forEach(([px, py], k) => {
        if (!inst.visibility[k]) return;
        const d = Math.hypot(px - x, py - y) * this.scale;
        if (d <= HIT_PX && (!best || d < best.d)) best = { n, k, d };
      });
    });
    return best;
  }

  down(e) {
    if (e.button !== 0) return;
    const found = this.hit(e);
    if (!found) return;
    e.preventDefault();
    this.pause();
    this.drag = { ...found, frame: this.frame, moved: false };
    this.selectedTrack = this.instances[found.n].track_id;
  }

  move(e) {
    if (!this.drag || this.drag.frame !== this.frame) return;
    const inst = this.instances[this.drag.n];
    inst.keypoints[this.drag.k] = this.imagePoint(e);
    this.drag.moved = true;
    this.draw();
  }

  up() {
    const drag = this.drag;
    this.drag = null;
    if (!drag || !drag.moved || drag.frame !== this.frame) return;
    this.saveKeyframe(this.instances[drag.n]).catch((e) => this.fail(e));
  }

  async saveKeyframe(inst) {
    const body = {};
    for (const name of INSTANCE_FIELDS) if (inst[name] !== undefined) body[name] = inst[name];
    // A person set it: it is accepted, and a stored instance is replaced at its version.
    body.source = "manual";
    body.status = "accepted";
    if (!inst.interpolated && inst.version) body.version = inst.version;
    const frame = this.frame;
    this.setStatus("saving…", "saving");
    try {
      await videoApi.setKeyframe(this.vid, inst.track_id, frame, body);
      this.setStatus("saved", "saved");
    } catch (error) {
      if (error.status === 409) {
        this.setStatus("Conflict: this frame was changed elsewhere; showing the stored version.", "conflict");
        toast("Conflict: the frame was changed elsewhere; reloaded.", "error");
      } else throw error;
    }
    await this.refreshTracks();
    if (this.frame === frame) await this.show(frame);
  }

  async outside() {
    if (this.selectedTrack === null) return toast("Select a track first.", "info");
    try {
      await videoApi.setOutside(this.vid, this.selectedTrack, this.frame, true);
      this.setStatus(`track #${this.selectedTrack} outside from frame ${this.frame}`, "saved");
      await this.refreshTracks();
      await this.show(this.frame);
    } catch (error) {
      this.fail(error);
    }
  }

  async propagate() {
    if (this.selectedTrack === null) return toast("Select a track first.", "info");
    this.pause();
    const count = Math.max(1, Math.min(300, Number(this.countInput.value) || 10));
    const body = { from_frame: this.frame, count, model: this.modelInput.value.trim() || "blazepose" };
    this.setStatus("tracking forward…", "saving");
    try {
      const out = await videoApi.propagate(this.vid, this.selectedTrack, body);
      this.setStatus(`propagated to ${out.frames.length} frame(s)`, "saved");
      await this.refreshTracks();
      await this.show(this.frame);
    } catch (error) {
      this.fail(error);
    }
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
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    let handled = true;
    if (e.key === " ") this.toggle();
    else if (e.key === ",") this.step(-1);
    else if (e.key === ".") this.step(1);
    else if (e.shiftKey && e.key === "ArrowLeft") this.step(-1);
    else if (e.shiftKey && e.key === "ArrowRight") this.step(1);
    else if (e.key === "Home") this.step(-this.frame);
    else if (e.key === "End") this.step(this.video.frame_count - 1 - this.frame);
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
      instances: this.instances.map((i) => ({ ...i, deleted: false })),
      tracks: this.tracks,
      requestMs: this.perf.requests.slice(),
    };
  }

  /** Client (CSS px) position of keypoint k of the track's instance on this frame. */
  clientPoint(trackId, k) {
    const inst = this.instances.find((i) => i.track_id === trackId);
    if (!inst) return null;
    return this.clientFromImage(inst.keypoints[k][0], inst.keypoints[k][1]);
  }

  clientFromImage(x, y) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: rect.left + x * this.scale, y: rect.top + y * this.scale };
  }

  destroy() {
    this.pause();
    this.token++;
    document.removeEventListener("keydown", this.onKey);
    window.removeEventListener("mousemove", this.onMove);
    window.removeEventListener("mouseup", this.onUp);
    if (this.timeline) this.timeline.destroy();
  }
}
