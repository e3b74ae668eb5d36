// The "Import annotations" dialog of the project page (managers only): an annotation file
// of a readable format (GET /api/formats) or another tool's export zip, optionally its
// images (files or a whole folder), the target dataset, what to do with images the file
// names but nobody uploaded, and with images already in the project. It posts to
// POST /api/projects/{pid}/import/{format} (posekit.server.routes.transfer) with upload
// progress and shows the server's report (or its 422 message naming the bad element).

import { ApiError, toLogin } from "./api.js";
import { el } from "./dom.js";

const IMAGE_NAME = /\.(jpe?g|png|webp|bmp|tiff?)$/i;

// What to upload, per format (the server also takes a zip of the file with its images).
const HINTS = {
  coco: "the COCO keypoints .json (CVAT's and Datumaro's COCO zips work too)",
  cvat: "CVAT's annotations.xml, or the zip CVAT exports (with its images/ folder)",
  labelstudio: "Label Studio's JSON export (tasks with keypointlabels results)",
  posetrack: "a PoseTrack18 .json of one video",
  sleap: "a SLEAP .slp file; frames of its videos come without images unless uploaded",
  deeplabcut: "a zip of the DeepLabCut project folder (config.yaml and labeled-data/ with the CollectedData_*.csv or .h5 and the frames)",
  supervisely: "a zip of the Supervisely project folder (meta.json and <dataset>/ann/, <dataset>/img/)",
};

const MISSING = [
  ["error", "refuse the import and name them"],
  ["register", "import their annotations without the image"],
];
const EXISTING = [
  ["attach", "attach the file's annotations where nobody labeled the image yet (skip labeled ones)"],
  ["skip", "skip them: leave images already in the project as they are"],
];

/** The readable format a file name (and, for .json, its first bytes) most likely is. */
export async function guessFormat(file, readable) {
  const name = file.name.toLowerCase();
  const names = readable.map((f) => f.name);
  const has = (format) => names.includes(format) && format;
  if (name.endsWith(".zip")) {
    if (/supervisely/.test(name)) return has("supervisely");
    if (/dlc|deeplabcut/.test(name)) return has("deeplabcut");
    if (/cvat/.test(name)) return has("cvat");
    if (/coco/.test(name)) return has("coco");
    return null; // keep the user's choice
  }
  if (name.endsWith(".json")) {
    const head = await file.slice(0, 256 * 1024).text().catch(() => "");
    // Label Studio: a list of tasks (or one task) with keypointlabels results; COCO and
    // PoseTrack: one object with images (PoseTrack's of video frames).
    if (head.trimStart().startsWith("[") || /"(keypointlabels|rectanglelabels)"/.test(head)) return has("labelstudio");
    if (/"(vid_id|frame_id|is_labeled)"/.test(head)) return has("posetrack");
    return has("coco");
  }
  const byExtension = readable.find((f) => f.extensions.some((ext) => name.endsWith(ext)));
  return byExtension ? byExtension.name : null;
}

/** The name an image is sent under: its path inside the chosen folder (the folder's own
 * name left out, as the annotation file names images relative to it), else its name. */
export function uploadName(file) {
  const relative = file.webkitRelativePath || "";
  const parts = relative.split("/").filter(Boolean);
  return parts.length > 1 ? parts.slice(1).join("/") : file.name;
}

/** The report in words: counts first, then one line per matched / skipped / missing /
 * renamed file. */
export function reportLines(report) {
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const head = [`Imported ${plural(report.added, "new image")} with ${plural(report.instances, "instance")}`];
  if (report.attached) head.push(`annotations attached to ${plural(report.attached, "image")} already in the project`);
  const matched = report.matched || [];
  if (matched.length) head.push(`${plural(matched.length, "image")} matched by base name`);
  const skipped = report.skipped || [];
  if (skipped.length) head.push(`${plural(skipped.length, "image")} skipped`);
  const missing = report.missing_media || [];
  if (missing.length) head.push(`${plural(missing.length, "image")} registered without the image file`);
  if (report.box_only) head.push(`${plural(report.box_only, "instance")} with a box only`);
  const details = [
    ...matched.map(([name, item]) => `matched ${name} -> ${item} (same base name)`),
    ...skipped.map(([name, reason]) => `skipped ${name}: ${reason}`),
    ...(report.failures || []).map(([name, reason]) => `failed ${name}: ${reason}`),
    ...(report.renamed || []).map(([name, stored]) => `renamed ${name} -> ${stored}`),
    ...missing.map((name) => `no image file: ${name}`),
  ];
  return { summary: `${head.join(", ")} (dataset ${report.dataset}).`, details };
}

/** POST the form with upload progress: {done: a promise of the JSON report (rejected with
 * ApiError), abort()}. */
function send(url, form, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open("POST", url);
    xhr.setRequestHeader("X-Posekit-Client", "ui");
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0));
    xhr.upload.addEventListener("load", () => onProgress(-1, 0));
    xhr.addEventListener("load", () => {
      if (xhr.status === 401) toLogin();
      let body = xhr.responseText;
      try {
        body = JSON.parse(body);
      } catch {
        // a proxy's HTML error page: shown as text
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body, url));
    });
    xhr.addEventListener("error", () => reject(new Error("the upload failed (network error)")));
    xhr.addEventListener("abort", () => reject(new Error("Upload cancelled: nothing was imported.")));
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

/** The server's message of a failed import, without the status and URL around it. */
function messageOf(error) {
  if (error instanceof ApiError && error.body && typeof error.body.detail === "string") {
    return `${error.status === 422 ? "Not imported" : `Refused (${error.status})`}: ${error.body.detail}`;
  }
  if (error instanceof ApiError && error.body && Array.isArray(error.body.detail)) {
    return `Not imported: ${error.body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ")}`;
  }
  return error.message;
}

/**
 * Open the dialog; resolves when the user closes it, with the last import's report (null
 * when nothing was imported).
 * @param {Object} project from GET /api/projects/{pid}
 * @param {Object[]} formatTable GET /api/formats
 * @param {{onImported?: Function}} [options] called with each report as it arrives (the
 *   project page redraws its grid behind the dialog)
 */
export function openImportDialog(project, formatTable, { onImported = null } = {}) {
  const readable = formatTable.filter((f) => f.can_read);
  const format = el(
    "select",
    { id: "imp-format" },
    readable.map((f) => {
      const files = f.kind === "folder" ? "zip of the folder" : [...f.extensions, ".zip"].join(", ");
      return el("option", { value: f.name }, `${f.title} (${files})`);
    }),
  );
  const hint = el("span", { id: "imp-hint" });
  const file = el("input", { type: "file", id: "imp-file" });
  const pictures = el("input", { type: "file", id: "imp-images", multiple: true, accept: "image/*" });
  const folder = el("input", { type: "file", id: "imp-folder", multiple: true, webkitdirectory: true });
  const chosen = el("span", { class: "muted", id: "imp-chosen" });
  const datasets = el(
    "datalist",
    { id: "imp-datasets" },
    (project.datasets || []).map((d) => el("option", { value: d.name })),
  );
  const dataset = el("input", { id: "imp-dataset", value: "default", list: "imp-datasets", required: true });
  const missing = el("select", { id: "imp-missing" }, MISSING.map(([v, t]) => el("option", { value: v }, t)));
  const existing = el("select", { id: "imp-existing" }, EXISTING.map(([v, t]) => el("option", { value: v }, t)));
  const progress = el("progress", { id: "imp-progress", class: "hidden", max: "1", value: "0" });
  const status = el("p", { class: "muted", id: "imp-status" });
  const error = el("p", { class: "error", id: "imp-error", role: "alert" });
  const summary = el("p", { id: "imp-summary", role: "status" });
  const details = el("ul", { id: "imp-details", class: "import-details" });
  const start = el("button", { type: "button", id: "imp-start" }, "Import");
  const close = el("button", { type: "button", id: "imp-close" }, "Close");

  const images = () => {
    const all = [...pictures.files, ...folder.files].filter((f) => IMAGE_NAME.test(f.name));
    const seen = new Set();
    return all.filter((f) => {
      const key = uploadName(f);
      return !seen.has(key) && seen.add(key);
    });
  };
  const showHint = () => {
    const spec = readable.find((f) => f.name === format.value);
    hint.textContent = HINTS[format.value] || (spec ? `a ${spec.title} file` : "");
    file.accept = spec && spec.kind === "file" ? [...spec.extensions, ".zip"].join(",") : ".zip";
  };
  const showChosen = () => {
    const n = images().length;
    chosen.textContent = n ? `${n} image${n === 1 ? "" : "s"} chosen` : "no images: the file's images must be in the project already, or in the zip";
  };
  format.addEventListener("change", showHint);
  file.addEventListener("change", async () => {
    const picked = file.files[0];
    if (!picked) return;
    const guess = await guessFormat(picked, readable);
    if (guess) format.value = guess;
    showHint();
  });
  pictures.addEventListener("change", showChosen);
  folder.addEventListener("change", showChosen);
  showHint();
  showChosen();

  const row = (label, input, extra = null) =>
    el("tr", {}, el("td", { text: label }), el("td", {}, input, extra ? el("div", { class: "hint" }, extra) : null));

  return new Promise((resolve) => {
    let imported = null;
    const overlay = el("div", { class: "dialog", id: "import-dialog", role: "dialog", "aria-label": "Import annotations" });
    const finish = () => {
      overlay.remove();
      resolve(imported);
    };
    let inFlight = null; // the running upload, while it can still be cancelled
    close.addEventListener("click", () => (inFlight ? inFlight.abort() : finish()));
    start.addEventListener("click", async () => {
      error.textContent = "";
      summary.textContent = "";
      details.replaceChildren();
      if (!file.files[0]) {
        error.textContent = "Choose the annotation file (or zip) to import.";
        return;
      }
      if (!dataset.value.trim()) {
        error.textContent = "Name the dataset to import into.";
        return;
      }
      const form = new FormData();
      form.append("file", file.files[0], file.files[0].name);
      for (const image of images()) form.append("images", image, uploadName(image));
      const query = new URLSearchParams({ dataset: dataset.value.trim(), missing_media: missing.value, existing: existing.value });
      const url = `/api/projects/${project.id}/import/${encodeURIComponent(format.value)}?${query}`;
      start.disabled = true;
      close.textContent = "Cancel upload";
      progress.classList.remove("hidden");
      progress.removeAttribute("value"); // indeterminate until the first progress event
      status.textContent = "Uploading…";
      try {
        inFlight = send(url, form, (loaded, total) => {
          if (loaded < 0) {
            // The server imports in one transaction from here: too late to cancel.
            inFlight = null;
            close.disabled = true;
            progress.removeAttribute("value");
            status.textContent = "Uploaded; importing on the server…";
          } else if (total) {
            progress.max = total;
            progress.value = loaded;
            status.textContent = `Uploading… ${Math.round((100 * loaded) / total)}% of ${(total / 1e6).toFixed(1)} MB`;
          }
        });
        const report = await inFlight.done;
        imported = report;
        const lines = reportLines(report);
        summary.textContent = lines.summary;
        details.replaceChildren(...lines.details.slice(0, 200).map((line) => el("li", { text: line })));
        if (lines.details.length > 200) details.append(el("li", { class: "muted", text: `… and ${lines.details.length - 200} more` }));
        status.textContent = "Done.";
        if (onImported) onImported(report);
      } catch (e) {
        error.textContent = messageOf(e);
        status.textContent = "";
      } finally {
        inFlight = null;
        progress.classList.add("hidden");
        start.disabled = false;
        close.disabled = false;
        close.textContent = "Close";
      }
    });
    overlay.append(
      el(
        "div",
        { class: "dialog-box import-box" },
        el("h2", { text: "Import annotations" }),
        el(
          "table",
          { class: "form-table" },
          row("Format", format, hint),
          row("Annotation file", file, "its format is guessed from the name (and content); check it above"),
          row("Images", el("span", {}, pictures, el("label", { class: "button" }, "or a folder…", folder)), chosen),
          row("Dataset", el("span", {}, dataset, datasets), "created if it does not exist"),
          row("Images not uploaded", missing, "images the file names that are neither uploaded nor in the dataset"),
          row("Images already in the project", existing, "same file name, same content, or the same base name in another folder (photo.jpg for upload/18/photo.jpg) when only one image of this dataset has it"),
        ),
        progress,
        status,
        error,
        summary,
        details,
        start,
        close,
      ),
    );
    document.body.append(overlay);
  });
}
