// Side panel of the annotation view: the instance list, the keypoint table of the
// active instance, the not-labeled list and the conflict boxes.
// Methods are mixed into AnnotationView (see annotate.js).

import { clear, el } from "./dom.js";
import { NEXT_VIS } from "./edits.js";
import { historySection } from "./history_panel.js";
import { LOW_SCORE } from "./render.js";

const VIS_LABEL = { 2: "visible", 1: "occluded", 0: "not labeled" };

export class PanelMethods {
  updatePanel() {
    if (!this.side) return;
    // The workflow panel (queue.js) stays on top: the same node, its focus kept.
    const panel = this.workflowPanel;
    const focused = panel && panel.contains(document.activeElement) ? document.activeElement : null;
    const side = clear(this.side);
    if (panel) side.append(panel);
    if (focused) focused.focus({ preventScroll: true });
    const live = this.live();
    side.append(el("h3", { text: `Instances (${live.length})` }));
    side.append(this.scoreFilter());
    const list = el("ol", { class: "instances" });
    live.forEach((rec, n) => {
      const d = rec.data;
      const labeled = d.visibility.filter((v) => v).length;
      const score = d.score === null || d.score === undefined ? "" : ` ${d.score.toFixed(2)}`;
      const row = el(
        "li",
        {
          class: `inst inst-${d.status}${rec.key === this.activeKey ? " active" : ""}`,
          dataset: { key: String(rec.key) },
          onclick: () => this.select(rec.key),
        },
        el("span", { text: `#${n + 1} ${d.status}${score}` }),
        el("span", { class: "muted", text: ` ${d.source} · ${labeled}/${this.K}` }),
        rec.conflict ? el("span", { class: "badge-conflict", text: " conflict" }) : null,
      );
      list.append(row);
    });
    side.append(list);

    for (const rec of this.records.filter((r) => r.conflict)) side.append(this.conflictPanel(rec));

    const rec = this.active();
    if (!rec) {
      side.append(
        el("p", {
          class: "hint",
          text: "Click an instance or draw a box (B). Press ? for all shortcuts.",
        }),
      );
      return;
    }
    const d = rec.data;
    const selectedKps = this.selected.get(rec.key) || new Set();
    side.append(el("h3", { text: "Keypoints" }));
    const table = el("table", { class: "keypoints", id: "keypoint-table" });
    const missing = [];
    this.template.keypoints.forEach((name, k) => {
      const v = d.visibility[k];
      if (!v) missing.push(k);
      const score = d.keypoint_scores ? d.keypoint_scores[k] : null;
      const low = d.status === "predicted" && score !== null && score < LOW_SCORE;
      const badge = el(
        "button",
        {
          type: "button",
          class: `vis vis-${v}`,
          title: "Click to cycle visible → occluded → not labeled",
          dataset: { k: String(k) },
          onclick: (e) => {
            e.stopPropagation();
            this.setVisibility(rec, k, NEXT_VIS[d.visibility[k]]);
          },
        },
        VIS_LABEL[v],
      );
      const row = el(
        "tr",
        {
          class: `${selectedKps.has(k) ? "selected " : ""}${v ? "" : "missing"}`,
          dataset: { k: String(k) },
          onclick: () => (v ? this.select(rec.key, [k]) : this.startPlacing(k)),
        },
        el("td", { class: "kp-name", text: name }),
        el("td", {}, badge),
        el("td", {
          class: low ? "score low" : "score",
          text: score === null || score === undefined ? "" : score.toFixed(2),
        }),
      );
      table.append(row);
    });
    side.append(table);
    if (missing.length) {
      side.append(
        el(
          "div",
          { class: "missing-list", id: "missing-list" },
          el("h3", { text: `Not labeled (${missing.length})` }),
          el(
            "p",
            { class: "hint" },
            "Press P (or click a name) then click the canvas to place them in template order.",
          ),
          el(
            "ul",
            {},
            missing.map((k) =>
              el("li", {
                text: this.template.keypoints[k],
                onclick: () => this.startPlacing(k),
              }),
            ),
          ),
        ),
      );
    }
    const history = historySection(this, rec);
    if (history) side.append(history);
  }

  /** "Hide predictions below S" (kept in localStorage) and a button rejecting them. */
  scoreFilter() {
    if (this.minScore === undefined) {
      const saved = Number(window.localStorage.getItem("posekit.minScore"));
      this.minScore = Number.isFinite(saved) && saved > 0 && saved <= 1 ? saved : 0;
    }
    const hidden = this.records.filter((r) => !r.deleted && this.belowMinScore(r));
    const input = el("input", {
      type: "number",
      min: "0",
      max: "1",
      step: "0.05",
      id: "min-score",
      value: String(this.minScore),
      title: "Hide predictions whose score is below this (0 shows all)",
      onchange: () => {
        const value = Math.min(1, Math.max(0, Number(input.value) || 0));
        this.minScore = value;
        window.localStorage.setItem("posekit.minScore", String(value));
        this.updatePanel();
        this.invalidate();
      },
    });
    const reject = hidden.length
      ? el(
          "button",
          {
            type: "button",
            id: "reject-hidden",
            title: "Reject the hidden low-score predictions (one undo step)",
            onclick: () =>
              this.edit("reject low scores", hidden, () => {
                for (const r of hidden) r.data.status = "rejected";
              }),
          },
          `Reject ${hidden.length} hidden`,
        )
      : null;
    return el(
      "div",
      { class: "score-filter" },
      el("label", {}, "Hide predictions below ", input),
      hidden.length ? el("span", { class: "muted", text: ` ${hidden.length} hidden ` }) : null,
      reject,
    );
  }

  conflictPanel(rec) {
    const current = rec.conflict.current;
    const text = current
      ? `Someone else saved this instance (server version ${current.version}). ` +
        "Yours is kept here; the server's is drawn as a pale ghost."
      : "This instance was deleted on the server. Yours is kept here.";
    return el(
      "div",
      { class: "conflict", role: "alert" },
      el("strong", { text: "Conflict" }),
      el("p", { text }),
      el(
        "button",
        { type: "button", class: "keep-mine", onclick: () => this.keepMine(rec) },
        "Keep mine (overwrite)",
      ),
      el(
        "button",
        { type: "button", class: "take-theirs", onclick: () => this.takeTheirs(rec) },
        "Take theirs",
      ),
    );
  }
}
