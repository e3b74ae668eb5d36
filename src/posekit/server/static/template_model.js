// The template being edited: keypoints (name, colour, sigma, position on the editor
// canvas, and the name it had in the project, for renames), edges and flip pairs by
// name, colours per limb, derived points. Converts to and from the YAML/JSON layout of
// the presets (posekit.skeleton.Skeleton.to_dict), which the server validates.

import { defaultLayout } from "./layout.js";

// A new point's OKS sigma. The COCO sigmas run from 0.025 (eyes) to 0.107 (hips), per
// keypoint, measured from the spread of repeated human annotations (Ronchi & Perona,
// "Benchmarking and Error Diagnosis in Multi-Instance Pose Estimation", ICCV 2017; the
// COCO keypoint evaluation). 0.05 is a middle value for a point nobody measured yet.
export const DEFAULT_SIGMA = 0.05;
export const DEFAULT_SIGMA_SOURCE =
  "uniform 0.05 for new points (COCO measures 0.025-0.107 per keypoint, Ronchi & Perona 2017)";

// Body-side colours, the same as the server's defaults (posekit.skeleton.template.SIDE_COLORS).
const SIDE = { left: "#00c850", right: "#ff8000", center: "#3399ff" };

export function sideOf(name) {
  const lowered = String(name).toLowerCase();
  const tokens = lowered.split(/[_\-. ]/);
  if (tokens.includes("left") || lowered.startsWith("left") || lowered.startsWith("l_") || lowered.endsWith("_l")) {
    return "left";
  }
  if (tokens.includes("right") || lowered.startsWith("right") || lowered.startsWith("r_") || lowered.endsWith("_r")) {
    return "right";
  }
  return "center";
}

const hex = (rgb) => `#${rgb.map((v) => Number(v).toString(16).padStart(2, "0")).join("")}`;
const rgb = (text) => [1, 3, 5].map((i) => parseInt(text.slice(i, i + 2), 16));

export class TemplateModel {
  constructor() {
    this.name = "custom";
    this.displayName = "";
    this.category = "person";
    this.description = "";
    this.sigmasSource = DEFAULT_SIGMA_SOURCE;
    this.keypoints = []; // {id, name, origin, color, sigma, x, y}
    this.edges = []; // {a, b, color} by keypoint id
    this.flips = []; // [idA, idB]
    this.derived = {}; // name -> definition (YAML layout)
    this.aliases = null;
    this.nextId = 1;
  }

  /** A model of a template definition; `layout` (name -> [x, y] in 0..1) places points. */
  static fromDefinition(definition, layout = null, { fromProject = false } = {}) {
    const model = new TemplateModel();
    if (!definition) return model;
    model.name = definition.name || "custom";
    model.displayName = definition.display_name || "";
    model.category = definition.category || "person";
    model.description = definition.description || "";
    model.sigmasSource = definition.sigmas_source || "";
    model.derived = { ...(definition.derived || {}) };
    model.aliases = definition.aliases || null;
    const names = definition.keypoints || [];
    const fallback = defaultLayout(names).points;
    names.forEach((name, i) => {
      const at = (layout && layout[name]) || fallback[i];
      const color = definition.keypoint_colors ? hex(definition.keypoint_colors[i]) : SIDE[sideOf(name)];
      const sigma = definition.sigmas ? definition.sigmas[i] : DEFAULT_SIGMA;
      model.keypoints.push({
        id: model.nextId++,
        name,
        origin: fromProject ? name : null,
        color,
        sigma,
        x: at[0],
        y: at[1],
      });
    });
    const byName = (n) => model.keypoints.find((k) => k.name === n);
    (definition.edges || []).forEach(([a, b], e) => {
      const ka = byName(a);
      const kb = byName(b);
      if (!ka || !kb) return;
      const color = definition.edge_colors ? hex(definition.edge_colors[e]) : model.limbColor(ka, kb);
      model.edges.push({ a: ka.id, b: kb.id, color });
    });
    for (const [a, b] of definition.flip_pairs || []) {
      const ka = byName(a);
      const kb = byName(b);
      if (ka && kb) model.flips.push([ka.id, kb.id]);
    }
    return model;
  }

  limbColor(ka, kb) {
    const sa = sideOf(ka.name);
    return SIDE[sa === sideOf(kb.name) ? sa : "center"];
  }

  point(id) {
    return this.keypoints.find((k) => k.id === id) || null;
  }

  freshName(base = "point") {
    const names = new Set(this.keypoints.map((k) => k.name));
    for (let i = this.keypoints.length + 1; ; i++) {
      if (!names.has(`${base}_${i}`)) return `${base}_${i}`;
    }
  }

  addPoint(x, y, name = null) {
    const point = {
      id: this.nextId++,
      name: name || this.freshName(),
      origin: null,
      color: SIDE.center,
      sigma: DEFAULT_SIGMA,
      x,
      y,
    };
    point.color = SIDE[sideOf(point.name)];
    this.keypoints.push(point);
    return point;
  }

  removePoint(id) {
    this.keypoints = this.keypoints.filter((k) => k.id !== id);
    this.edges = this.edges.filter((e) => e.a !== id && e.b !== id);
    this.flips = this.flips.filter(([a, b]) => a !== id && b !== id);
  }

  move(id, delta) {
    const i = this.keypoints.findIndex((k) => k.id === id);
    const j = i + delta;
    if (i < 0 || j < 0 || j >= this.keypoints.length) return;
    const list = this.keypoints;
    [list[i], list[j]] = [list[j], list[i]];
  }

  /** Add the edge a-b, or remove it when it exists (either direction). */
  toggleEdge(a, b) {
    if (a === b) return;
    const at = this.edges.findIndex((e) => (e.a === a && e.b === b) || (e.a === b && e.b === a));
    if (at >= 0) this.edges.splice(at, 1);
    else this.edges.push({ a, b, color: this.limbColor(this.point(a), this.point(b)) });
  }

  partnerOf(id) {
    const pair = this.flips.find(([a, b]) => a === id || b === id);
    return pair ? (pair[0] === id ? pair[1] : pair[0]) : null;
  }

  setPartner(id, partner) {
    this.flips = this.flips.filter(([a, b]) => a !== id && b !== id);
    if (partner !== null && partner !== id) {
      this.flips = this.flips.filter(([a, b]) => a !== partner && b !== partner);
      this.flips.push([id, partner]);
    }
  }

  /** Pair every left_* with its right_* (and *_l with *_r); returns pairs added. */
  pairByName() {
    let added = 0;
    const byName = new Map(this.keypoints.map((k) => [k.name, k]));
    const swaps = [
      [/^left(?=[_\-.]|$)/, "right"],
      [/^l_/, "r_"],
      [/_l$/, "_r"],
      [/^Left/, "Right"],
      [/^L_/, "R_"],
    ];
    for (const k of this.keypoints) {
      for (const [pattern, replacement] of swaps) {
        if (!pattern.test(k.name)) continue;
        const other = byName.get(k.name.replace(pattern, replacement));
        if (other && this.partnerOf(k.id) !== other.id) {
          this.setPartner(k.id, other.id);
          added++;
        }
        break;
      }
    }
    return added;
  }

  /** Problems of the flip pairs: points named left_/right_ without a partner. */
  symmetryIssues() {
    return this.keypoints
      .filter((k) => sideOf(k.name) !== "center" && this.partnerOf(k.id) === null)
      .map((k) => `${k.name} has no flip partner`);
  }

  /** Renames for a project template: origin name -> current name. */
  renames() {
    const out = {};
    for (const k of this.keypoints) if (k.origin && k.origin !== k.name) out[k.origin] = k.name;
    return out;
  }

  layout() {
    return Object.fromEntries(this.keypoints.map((k) => [k.name, [k.x, k.y]]));
  }

  /** The template in the YAML/JSON layout of the presets. */
  toDefinition() {
    const name = (id) => (this.point(id) || { name: "?" }).name;
    const out = {
      name: this.name,
      display_name: this.displayName,
      category: this.category,
      description: this.description,
      keypoints: this.keypoints.map((k) => k.name),
      edges: this.edges.map((e) => [name(e.a), name(e.b)]),
      flip_pairs: this.flips.map(([a, b]) => [name(a), name(b)]),
      sigmas: this.keypoints.map((k) => Number(k.sigma)),
      sigmas_source: this.sigmasSource,
      keypoint_colors: this.keypoints.map((k) => rgb(k.color)),
      edge_colors: this.edges.map((e) => rgb(e.color)),
    };
    // Keys of aliases and derived points follow renames and deletions.
    const keep = (table) => {
      const renamed = {};
      for (const [key, value] of Object.entries(table || {})) {
        const point = this.keypoints.find((k) => k.name === key || k.origin === key);
        if (point) renamed[point.name] = value;
      }
      return renamed;
    };
    const derived = keep(this.derived);
    if (Object.keys(derived).length) out.derived = derived;
    const aliases = keep(this.aliases);
    if (Object.keys(aliases).length) out.aliases = aliases;
    return out;
  }
}
