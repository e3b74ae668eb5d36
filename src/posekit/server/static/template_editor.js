// The template editor dialog: keypoints on a canvas (a reference pose or an image of
// the project behind them), edges drawn by dragging from point to point, flip pairs
// (with "pair by name" and a symmetry check), colours, OKS sigmas, derived points;
// live validation by the server (the errors of `posekit templates validate`, shown next
// to the element they name); import and export as YAML/JSON.
//
// openTemplateEditor({mode: "create"|"project", project, onDone}) resolves when closed.
// In "project" mode saving previews the change (renamed / added / removed points, the
// labeled points a removal drops) and asks before applying it to every instance.

import { api } from "./api.js";
import { clear, el, toast } from "./dom.js";
import { TemplateModel } from "./template_model.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 400;
const H = 500;
const svg = (tag, attrs = {}) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
};

export async function openTemplateEditor({ mode, project = null, onDone = () => {} }) {
  const editor = new TemplateEditor(mode, project, onDone);
  await editor.open();
  return editor;
}

class TemplateEditor {
  constructor(mode, project, onDone) {
    this.mode = mode;
    this.project = project;
    this.onDone = onDone;
    this.model = new TemplateModel();
    this.tool = "move";
    this.selected = null; // keypoint id
    this.drag = null;
    this.problem = null;
    this.valid = false;
    this.templateVersion = null;
    this.checkTimer = null;
  }

  async open() {
    this.overlay = el("div", { class: "dialog", id: "template-editor", role: "dialog" });
    this.box = el("div", { class: "dialog-box editor-box" });
    this.overlay.append(this.box);
    document.body.append(this.overlay);
    const [templates, projects] = await Promise.all([api.templates(), api.projects()]);
    this.templates = templates;
    this.projects = projects.filter((p) => !this.project || p.id !== this.project.id);
    if (this.mode === "project") {
      const current = await api.projectTemplate(this.project.id);
      this.templateVersion = current.template_version;
      this.model = TemplateModel.fromDefinition(current.definition, current.layout, {
        fromProject: true,
      });
    } else {
      await this.start("preset:coco17");
    }
    this.build();
  }

  close(result = null) {
    clearTimeout(this.checkTimer);
    this.overlay.remove();
    this.onDone(result);
  }

  async start(choice) {
    if (choice === "empty") this.model = new TemplateModel();
    else if (choice.startsWith("preset:")) {
      const preset = await api.templateDefinition(choice.slice(7));
      this.model = TemplateModel.fromDefinition(preset.definition);
    } else if (choice.startsWith("project:")) {
      const other = await api.projectTemplate(Number(choice.slice(8)));
      this.model = TemplateModel.fromDefinition(other.definition, other.layout);
    }
    if (this.mode === "project") {
      // Points of the current template keep their identity when names match.
      const origins = new Set(this.originalNames || []);
      for (const k of this.model.keypoints) k.origin = origins.has(k.name) ? k.name : null;
    }
    this.selected = null;
  }

  // ------------------------------------------------------------------ layout
  build() {
    if (this.mode === "project") this.originalNames = this.model.keypoints.map((k) => k.origin);
    const startSelect = el(
      "select",
      { id: "template-start" },
      el("option", { value: "" }, this.mode === "project" ? "Replace with…" : "Start from…"),
      this.templates.map((t) =>
        el("option", { value: `preset:${t.name}` }, `${t.display_name} (${t.num_keypoints})`),
      ),
      this.projects.map((p) => el("option", { value: `project:${p.id}` }, `copy of ${p.name}`)),
      el("option", { value: "empty" }, "empty"),
    );
    startSelect.addEventListener("change", async () => {
      if (!startSelect.value) return;
      await this.start(startSelect.value);
      this.refresh();
    });
    this.background = el("select", { id: "template-background" }, el("option", { value: "" }, "reference pose"));
    this.background.addEventListener("change", () => this.drawCanvas());
    if (this.project) this.loadBackgrounds();
    const tools = ["move", "add", "connect"].map((tool) =>
      el(
        "button",
        { type: "button", id: `tool-${tool}`, dataset: { tool }, onclick: () => this.setTool(tool) },
        { move: "Move", add: "Add point", connect: "Connect (drag)" }[tool],
      ),
    );
    this.canvas = svg("svg", { id: "template-canvas", viewBox: `0 0 ${W} ${H}`, width: W, height: H });
    this.canvas.addEventListener("pointerdown", (e) => this.onDown(e));
    this.canvas.addEventListener("pointermove", (e) => this.onMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.onUp(e));
    this.side = el("div", { class: "editor-side" });
    this.message = el("p", { id: "template-error", class: "error", role: "alert" });
    this.saveButton = el(
      "button",
      { type: "button", id: "template-save", onclick: () => this.save() },
      this.mode === "project" ? "Apply to project" : "Create project",
    );
    this.nameInput = el("input", { id: "new-project-name", placeholder: "project name" });
    const importInput = el("input", { type: "file", accept: ".yaml,.yml,.json", id: "template-import" });
    importInput.addEventListener("change", () => this.importFile(importInput.files[0]));
    this.exportLinks = el("span", { class: "editor-export" });
    clear(this.box).append(
      el("h2", { text: this.mode === "project" ? `Template of ${this.project.name}` : "New project" }),
      el(
        "div",
        { class: "editor-bar" },
        this.mode === "create" ? this.nameInput : null,
        startSelect,
        el("span", { class: "muted", text: "behind:" }),
        this.background,
        ...tools,
        el("label", { class: "button" }, "Import YAML/JSON", importInput),
        this.exportLinks,
      ),
      el("div", { class: "editor-work" }, el("div", { class: "editor-stage" }, this.canvas), this.side),
      this.message,
      el(
        "div",
        { class: "editor-bar" },
        this.saveButton,
        el("button", { type: "button", id: "template-cancel", onclick: () => this.close() }, "Cancel"),
      ),
    );
    this.setTool("move");
    this.refresh();
  }

  async loadBackgrounds() {
    try {
      const page = await api.items(this.project.id, { limit: 20 });
      for (const item of page.items) {
        this.background.append(el("option", { value: item.image_url }, item.file_name));
      }
    } catch {
      // no images: the reference pose only
    }
  }

  setTool(tool) {
    this.tool = tool;
    for (const b of this.box.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === tool);
  }

  refresh() {
    this.drawCanvas();
    this.drawSide();
    this.scheduleCheck();
  }

  // ------------------------------------------------------------------ canvas
  drawCanvas() {
    const c = this.canvas;
    while (c.firstChild) c.removeChild(c.firstChild);
    c.append(svg("rect", { x: 0, y: 0, width: W, height: H, fill: "#101216" }));
    if (this.background.value) {
      const image = svg("image", { x: 0, y: 0, width: W, height: H, preserveAspectRatio: "xMidYMid meet" });
      image.setAttribute("href", this.background.value);
      c.append(image);
    }
    const m = this.model;
    m.edges.forEach((e, index) => {
      const a = m.point(e.a);
      const b = m.point(e.b);
      if (!a || !b) return;
      const line = svg("line", {
        x1: a.x * W, y1: a.y * H, x2: b.x * W, y2: b.y * H,
        stroke: e.color, "stroke-width": this.problemAt("edge", index) ? 5 : 3,
        "data-edge": index,
      }); // prettier-ignore
      if (this.problemAt("edge", index)) line.setAttribute("stroke-dasharray", "6 4");
      c.append(line);
    });
    if (this.drag && this.drag.kind === "connect") {
      const a = m.point(this.drag.from);
      c.append(svg("line", { x1: a.x * W, y1: a.y * H, x2: this.drag.x, y2: this.drag.y, stroke: "#fff", "stroke-dasharray": "4 3" }));
    }
    for (const k of m.keypoints) {
      const group = svg("g", { "data-point": k.id });
      group.append(
        svg("circle", {
          cx: k.x * W, cy: k.y * H, r: 7, fill: k.color,
          stroke: k.id === this.selected ? "#ffeb3b" : "#000", "stroke-width": k.id === this.selected ? 3 : 1,
          "data-point": k.id, class: "editor-point",
        }),
      ); // prettier-ignore
      const label = svg("text", { x: k.x * W + 9, y: k.y * H - 7, fill: "#e6e6e6", "font-size": 11 });
      label.textContent = k.name;
      group.append(label);
      c.append(group);
    }
  }

  /** Canvas position (0..W, 0..H) of a pointer event. */
  at(event) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: ((event.clientX - rect.left) / rect.width) * W, y: ((event.clientY - rect.top) / rect.height) * H };
  }

  pointAt(p) {
    let best = null;
    let bestD = 12;
    for (const k of this.model.keypoints) {
      const d = Math.hypot(k.x * W - p.x, k.y * H - p.y);
      if (d < bestD) [best, bestD] = [k, d];
    }
    return best;
  }

  onDown(event) {
    const p = this.at(event);
    const hit = this.pointAt(p);
    this.canvas.setPointerCapture(event.pointerId);
    if (this.tool === "add" && !hit) {
      const point = this.model.addPoint(p.x / W, p.y / H);
      this.selected = point.id;
      this.refresh();
      return;
    }
    if (!hit) {
      this.selected = null;
      this.refresh();
      return;
    }
    this.selected = hit.id;
    this.drag = { kind: this.tool === "connect" || event.shiftKey ? "connect" : "move", from: hit.id, ...p };
    // The side panel is redrawn on pointerup: redrawing it now could move the canvas.
    this.drawCanvas();
  }

  onMove(event) {
    if (!this.drag) return;
    const p = this.at(event);
    if (this.drag.kind === "move") {
      const k = this.model.point(this.drag.from);
      k.x = Math.min(1, Math.max(0, p.x / W));
      k.y = Math.min(1, Math.max(0, p.y / H));
    } else Object.assign(this.drag, p);
    this.drawCanvas();
  }

  onUp(event) {
    const drag = this.drag;
    this.drag = null;
    if (drag && drag.kind === "connect") {
      const target = this.pointAt(this.at(event));
      if (target && target.id !== drag.from) this.model.toggleEdge(drag.from, target.id);
    }
    this.refresh();
  }

  // ------------------------------------------------------------------ side panel
  problemAt(kind, index = null, name = null) {
    const p = this.problem;
    if (!p || p.kind !== kind) return false;
    if (index !== null && p.index === index) return true;
    return name !== null && p.keypoint === name;
  }

  drawSide() {
    const m = this.model;
    const rows = m.keypoints.map((k, i) => {
      const name = el("input", { value: k.name, class: "kp-name-input", dataset: { index: String(i) } });
      name.addEventListener("input", () => {
        k.name = name.value.trim();
        this.drawCanvas();
        this.scheduleCheck();
      });
      name.addEventListener("change", () => this.refresh());
      const color = el("input", { type: "color", value: k.color, title: "colour" });
      color.addEventListener("input", () => {
        k.color = color.value;
        this.refresh();
      });
      const sigma = el("input", { type: "number", step: "0.001", min: "0.001", value: String(k.sigma), class: "sigma", title: "OKS sigma" });
      sigma.addEventListener("change", () => {
        k.sigma = Number(sigma.value);
        this.refresh();
      });
      const partner = el(
        "select",
        { title: "flip partner", class: "flip-select" },
        el("option", { value: "" }, "—"),
        m.keypoints.filter((o) => o.id !== k.id).map((o) => el("option", { value: String(o.id), selected: m.partnerOf(k.id) === o.id }, o.name)),
      );
      partner.addEventListener("change", () => {
        m.setPartner(k.id, partner.value ? Number(partner.value) : null);
        this.refresh();
      });
      const bad = this.problemAt("keypoint", i, k.name) || this.problemAt("sigma", i, k.name) || this.problemAt("colour", i, k.name) || this.problemAt("derived", null, k.name);
      const tail = k.origin && k.origin !== k.name ? el("span", { class: "muted", text: ` was ${k.origin}` }) : null;
      return el(
        "tr",
        { class: `${k.id === this.selected ? "selected" : ""} ${bad ? "bad" : ""}`, dataset: { point: String(k.id) } },
        el("td", { text: String(i) }),
        el("td", {}, name, tail, bad ? el("div", { class: "error field-error", text: this.problemText }) : null),
        el("td", {}, color),
        el("td", {}, sigma),
        el("td", {}, partner),
        el(
          "td",
          {},
          el("button", { type: "button", title: "up", onclick: () => (m.move(k.id, -1), this.refresh()) }, "↑"),
          el("button", { type: "button", title: "down", onclick: () => (m.move(k.id, 1), this.refresh()) }, "↓"),
          el("button", { type: "button", class: "delete-point", title: "delete", onclick: () => (m.removePoint(k.id), this.refresh()) }, "✕"),
        ),
      );
    });
    const edges = m.edges.map((e, index) => {
      const color = el("input", { type: "color", value: e.color });
      color.addEventListener("input", () => {
        e.color = color.value;
        this.refresh();
      });
      const bad = this.problemAt("edge", index);
      return el(
        "li",
        { class: bad ? "bad" : "", dataset: { edge: String(index) } },
        `${(m.point(e.a) || {}).name} — ${(m.point(e.b) || {}).name} `,
        color,
        el("button", { type: "button", class: "delete-edge", onclick: () => (m.edges.splice(index, 1), this.refresh()) }, "✕"),
        bad ? el("span", { class: "error field-error", text: this.problemText }) : null,
      );
    });
    const issues = m.symmetryIssues();
    const derived = el("textarea", { id: "template-derived", rows: "3", placeholder: '{"pelvis": {"mean": ["left_hip", "right_hip"]}}' });
    derived.value = Object.keys(m.derived).length ? JSON.stringify(m.derived) : "";
    derived.addEventListener("change", () => {
      try {
        m.derived = derived.value.trim() ? JSON.parse(derived.value) : {};
        this.refresh();
      } catch (error) {
        this.showError(`derived points: ${error.message}`);
      }
    });
    const sigmasSource = el("input", { id: "sigmas-source", value: m.sigmasSource, class: "wide" });
    sigmasSource.addEventListener("change", () => {
      m.sigmasSource = sigmasSource.value;
      this.scheduleCheck();
    });
    const templateName = el("input", { id: "template-name", value: m.name });
    templateName.addEventListener("change", () => {
      m.name = templateName.value.trim();
      this.scheduleCheck();
    });
    clear(this.side).append(
      el("label", {}, "Template name ", templateName),
      el("h3", { text: `Keypoints (${m.keypoints.length})` }),
      el("table", { class: "editor-table", id: "template-keypoints" },
        el("tr", {}, ["#", "name", "colour", "sigma", "flip partner", ""].map((t) => el("th", { text: t }))),
        rows), // prettier-ignore
      el("h3", { text: `Edges (${m.edges.length})` }),
      el("ul", { class: "editor-edges", id: "template-edges" }, edges),
      el("h3", { text: `Flip pairs (${m.flips.length})` }),
      el("button", { type: "button", id: "pair-by-name", onclick: () => this.pairByName() }, "Pair by name (left_*/right_*)"),
      el("p", { id: "symmetry", class: issues.length ? "warn" : "muted", text: issues.length ? `Symmetry: ${issues.join("; ")}` : "Symmetry: every left/right point has a partner" }),
      el("h3", { text: "OKS sigmas" }),
      el("p", { class: "hint", text: "Per keypoint; new points get 0.05. The COCO values (0.025 eyes … 0.107 hips) come from the spread of repeated human annotations (Ronchi & Perona, ICCV 2017)." }),
      el("label", {}, "source ", sigmasSource),
      el("h3", { text: "Derived points (JSON)" }),
      derived,
    ); // prettier-ignore
  }

  pairByName() {
    const added = this.model.pairByName();
    toast(added ? `Paired ${added} point(s) by name.` : "Nothing to pair by name.", "info");
    this.refresh();
  }

  // ------------------------------------------------------------------ validation
  scheduleCheck() {
    clearTimeout(this.checkTimer);
    this.saveButton.disabled = true;
    this.checkTimer = setTimeout(() => this.check(), 150);
  }

  async check() {
    const definition = this.model.toDefinition();
    try {
      const answer = await api.validateTemplate({ template: definition });
      const before = JSON.stringify(this.problem);
      this.valid = answer.valid;
      this.problem = answer.problem || null;
      this.problemText = answer.error || "";
      this.message.textContent = answer.error || "";
      this.saveButton.disabled = !answer.valid;
      this.overlay.dataset.valid = answer.valid ? "1" : "0";
      if (answer.valid) this.updateExports(definition, answer.yaml);
      if (JSON.stringify(this.problem) !== before) {
        this.drawCanvas();
        this.drawSide();
      }
    } catch (error) {
      this.showError(error.message);
    }
  }

  showError(text) {
    this.message.textContent = text;
  }

  updateExports(definition, yamlText) {
    for (const link of this.exportLinks.querySelectorAll("a")) URL.revokeObjectURL(link.href);
    const file = (text, type) => URL.createObjectURL(new Blob([text], { type }));
    const base = definition.name || "template";
    clear(this.exportLinks).append(
      el("a", { class: "button", id: "export-template-yaml", href: file(yamlText, "application/yaml"), download: `${base}.yaml` }, "Export YAML"),
      el("a", { class: "button", id: "export-template-json", href: file(JSON.stringify(definition, null, 1), "application/json"), download: `${base}.json` }, "Export JSON"),
    ); // prettier-ignore
  }

  async importFile(file) {
    if (!file) return;
    const answer = await api.validateTemplate({ text: await file.text() });
    if (!answer.valid) {
      this.showError(`${file.name}: ${answer.error}`);
      return;
    }
    const origins = new Set(this.originalNames || []);
    this.model = TemplateModel.fromDefinition(answer.definition);
    if (this.mode === "project") for (const k of this.model.keypoints) k.origin = origins.has(k.name) ? k.name : null;
    this.refresh();
  }

  // ------------------------------------------------------------------ saving
  async save() {
    const definition = this.model.toDefinition();
    const layout = this.model.layout();
    try {
      if (this.mode === "create") {
        const name = this.nameInput.value.trim();
        if (!name) {
          this.showError("Give the project a name.");
          return;
        }
        const created = await api.createProject(name, null, definition);
        await api.patchSettings(created.id, { template_layout: layout });
        this.close(created);
        return;
      }
      const body = { template: definition, renames: this.model.renames(), template_version: this.templateVersion, layout };
      const preview = await api.previewTemplateChange(this.project.id, body);
      if (!(await this.confirmChange(preview))) return;
      const done = await api.changeTemplate(this.project.id, { ...body, drop_labeled: preview.labeled_points_dropped > 0 });
      toast(`Template changed: ${done.instances} instance(s) migrated.`, "info");
      this.close(done);
    } catch (error) {
      this.showError(error.message);
    }
  }

  /** Ask before applying; resolves true to apply. */
  confirmChange(preview) {
    const lines = [];
    if (preview.renamed.length) lines.push(`Rename: ${preview.renamed.map(([a, b]) => `${a} → ${b}`).join(", ")} (positions kept)`);
    if (preview.added.length) lines.push(`Add: ${preview.added.join(", ")} (not labeled on the ${preview.instances} existing instance(s))`);
    if (preview.removed.length) {
      lines.push(`Delete: ${preview.removed.join(", ")} — ${preview.labeled_points_dropped} labeled point(s) of ${preview.instances_losing_points} instance(s) will be dropped; they are saved first to a JSON file in the workspace (template_changes/) to recover them.`);
    }
    if (preview.reordered) lines.push("Reorder the keypoints (data unchanged).");
    lines.push(`${preview.instances} instance(s) will be migrated; editors open elsewhere will have to reload.`);
    return new Promise((resolve) => {
      const box = el("div", { class: "dialog", id: "template-confirm", role: "alertdialog" });
      const done = (answer) => {
        box.remove();
        resolve(answer);
      };
      box.append(
        el("div", { class: "dialog-box" },
          el("h2", { text: "Change the template?" }),
          el("ul", { id: "template-confirm-lines" }, lines.map((t) => el("li", { text: t }))),
          el("button", { type: "button", id: "template-confirm-apply", onclick: () => done(true) }, preview.labeled_points_dropped ? `Drop ${preview.labeled_points_dropped} point(s) and apply` : "Apply"),
          el("button", { type: "button", id: "template-confirm-cancel", onclick: () => done(false) }, "Cancel"),
        ),
      ); // prettier-ignore
      document.body.append(box);
    });
  }
}
