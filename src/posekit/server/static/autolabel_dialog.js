// The auto-label dialog: which items (a dataset or all, or given item ids), the detector
// and pose model (only those that can run here), thresholds, batch size, device, and
// what to do with items that already have labels. The last choices are kept as the
// project's "autolabel" setting; the job (with its options) is shown by projects.js.

import { api } from "./api.js";
import { el } from "./dom.js";
import { modelSelect, models } from "./model_choice.js";

const EXISTING = [
  ["skip", "skip items a person labeled or reviewed"],
  ["beside", "add predictions beside the labels"],
  ["replace-predictions", "replace earlier predictions (labels kept)"],
];

function numberInput(id, value, { min = 0, max = 1, step = 0.01 } = {}) {
  return el("input", { type: "number", id, value: String(value), min: String(min), max: String(max), step: String(step) });
}

/**
 * Open the dialog; resolves with the started job, or null when cancelled.
 * @param {Object} project from GET /api/projects/{pid}
 * @param {number[]} [itemIds] preselected items (e.g. the selected ones)
 */
export async function openAutolabelDialog(project, itemIds = null) {
  const [list, settings] = await Promise.all([models(), api.settings(project.id)]);
  const last = settings.autolabel || {};
  const pick = (name, fallback) => (last[name] === undefined || last[name] === null ? fallback : last[name]);
  const dataset = el(
    "select",
    { id: "al-dataset" },
    el("option", { value: "" }, "all datasets"),
    project.datasets.map((d) => el("option", { value: d.name, selected: d.name === last.dataset }, `${d.name} (${d.num_items})`)),
  );
  const items = el("input", { id: "al-items", placeholder: "item ids, e.g. 3, 7 (optional)", value: itemIds ? itemIds.join(", ") : "" });
  const detector = modelSelect(list, "detector", pick("detector", "blazepose"), { id: "al-detector" });
  const pose = modelSelect(list, "pose", pick("pose", "blazepose"), { id: "al-pose" });
  const boxScore = numberInput("al-box-score", pick("min_box_score", 0));
  const instanceScore = numberInput("al-instance-score", pick("min_instance_score", 0.05));
  const nms = numberInput("al-oks-nms", pick("oks_nms_threshold", 0.5));
  const batch = numberInput("al-batch", pick("batch_size", 8), { min: 1, max: 256, step: 1 });
  const device = el(
    "select",
    { id: "al-device" },
    ["", "cpu", "cuda", "mps"].map((d) => el("option", { value: d, selected: d === (last.device || "") }, d || "auto")),
  );
  const existing = el(
    "select",
    { id: "al-existing" },
    EXISTING.map(([value, text]) => el("option", { value, selected: value === pick("existing", "skip") }, text)),
  );
  const error = el("p", { class: "error", id: "al-error", role: "alert" });
  const row = (label, input, hint = "") =>
    el("tr", {}, el("td", { text: label }), el("td", {}, input), el("td", { class: "hint", text: hint }));

  return new Promise((resolve) => {
    const overlay = el("div", { class: "dialog", id: "autolabel-dialog", role: "dialog" });
    const close = (job) => {
      overlay.remove();
      resolve(job);
    };
    const start = async () => {
      const ids = items.value.split(/[\s,]+/).filter(Boolean).map(Number);
      if (ids.some((i) => !Number.isInteger(i))) {
        error.textContent = "Item ids must be whole numbers.";
        return;
      }
      const options = {
        dataset: dataset.value || null,
        detector: detector.value,
        pose: pose.value,
        min_box_score: Number(boxScore.value),
        min_instance_score: Number(instanceScore.value),
        oks_nms_threshold: Number(nms.value),
        batch_size: Number(batch.value),
        device: device.value || null,
        existing: existing.value,
      };
      try {
        const job = await api.startJob(project.id, { kind: "autolabel", ...options, item_ids: ids.length ? ids : null });
        api.patchSettings(project.id, { autolabel: options }).catch(() => {});
        close(job);
      } catch (e) {
        error.textContent = e.message;
      }
    };
    overlay.append(
      el(
        "div",
        { class: "dialog-box" },
        el("h2", { text: "Auto-label" }),
        el(
          "table",
          { class: "form-table" },
          row("Dataset", dataset),
          row("Items", items, "only these; empty: every item of the dataset"),
          row("Detector", detector, "models that cannot run here are disabled"),
          row("Pose model", pose),
          row("Min box score", boxScore, "person boxes below are dropped"),
          row("Min instance score", instanceScore, "poses below are dropped"),
          row("OKS-NMS", nms, "duplicates with at least this OKS are merged (0: off)"),
          row("Batch size", batch),
          row("Device", device),
          row("Labeled items", existing),
        ),
        error,
        el("button", { type: "button", id: "al-start", onclick: start }, "Start"),
        el("button", { type: "button", id: "al-cancel", onclick: () => close(null) }, "Cancel"),
      ),
    );
    document.body.append(overlay);
  });
}
