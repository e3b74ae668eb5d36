// Project list and project page (item grid, filters, export, import, auto-label job, upload).

import { api } from "./api.js";
import { openAutolabelDialog } from "./autolabel_dialog.js";
import { clear, el, toast } from "./dom.js";
import { openImportDialog } from "./import_dialog.js";
import { assistControl } from "./model_choice.js";
import { workflowSection } from "./queue.js";
import { openTemplateEditor } from "./template_editor.js";
import { videoSection } from "./video_list.js";

// "all" and the item statuses of posekit.statuses.ITEM_STATUSES (the API's item filter).
export const FILTERS = ["all", "new", "predicted", "reviewed"];
const PAGE = 60;

// The format table (GET /api/formats), fetched once: the export menu is built from it.
let formatsPromise = null;
const formats = () => {
  if (!formatsPromise) {
    formatsPromise = api.formats().catch((error) => {
      formatsPromise = null;
      throw error;
    });
  }
  return formatsPromise;
};

const YOLO_SPLIT = { yolo: { val_fraction: 0.2 } };

/** One download link per writable format ("Export COCO", "Export YOLO", ...). */
function exportLinks(project, statuses, table) {
  return table
    .filter((format) => format.can_write)
    .map((format) =>
      el("a", {
        class: "button",
        id: `export-${format.name}`,
        "data-needs": "manage",
        // YOLO: a real validation split (a fifth of the images), not val = train.
        href: api.exportUrl(project.id, format.name, statuses, YOLO_SPLIT[format.name] || {}),
        download: "",
        title: `${format.title}${format.kind === "folder" ? " (zip)" : ""}`,
        text: `Export ${format.name.toUpperCase()}`,
      }),
    );
}

/** Render the list of projects with a "new project" form. */
export async function renderProjectList(root, { go }) {
  const [projects, templates] = await Promise.all([api.projects(), api.templates()]);
  clear(root);
  const list = el("ul", { class: "project-list", id: "project-list" });
  for (const p of projects) {
    list.append(
      el(
        "li",
        {},
        el("a", { href: `#/projects/${p.id}`, class: "project-link", text: p.name }),
        el("span", {
          class: "muted",
          text: ` · ${p.template_name} · ${p.num_items} items · ${p.num_instances} instances`,
        }),
      ),
    );
  }
  if (!projects.length) list.append(el("li", { class: "muted", text: "No projects yet." }));

  const name = el("input", { name: "name", placeholder: "project name", required: true });
  const template = el(
    "select",
    { name: "template" },
    templates.map((t) =>
      el(
        "option",
        { value: t.name, selected: t.name === "coco17" },
        `${t.display_name} (${t.num_keypoints} keypoints)`,
      ),
    ),
  );
  const form = el(
    "form",
    {
      class: "new-project",
      "data-needs": "admin",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const project = await api.createProject(name.value.trim(), template.value);
          go(`#/projects/${project.id}`);
        } catch (error) {
          toast(error.message, "error");
        }
      },
    },
    name,
    template,
    el("button", { type: "submit" }, "Create project"),
    el(
      "button",
      {
        type: "button",
        id: "design-template",
        onclick: () =>
          openTemplateEditor({
            mode: "create",
            onDone: (created) => created && go(`#/projects/${created.id}`),
          }).catch((error) => toast(error.message, "error")),
      },
      "Design a template…",
    ),
  );
  root.append(
    el("header", { class: "page-head" }, el("h1", { text: "posekit" })),
    el("h2", { text: "Projects" }),
    list,
    el("h2", { text: "New project", "data-needs": "admin" }),
    form,
  );
}

/**
 * Render a project page.
 * @param {HTMLElement} root
 * @param {Object} project from GET /api/projects/{pid}
 * @param {{filter: string, go: Function, openItem: Function, startReview: Function}} opts
 */
export async function renderProjectPage(root, project, opts) {
  const filter = FILTERS.includes(opts.filter) ? opts.filter : "all";
  clear(root);
  const grid = el("div", { class: "grid", id: "item-grid" });
  const videos = videoSection(project);
  const counter = el("span", { class: "muted" });
  const more = el("button", { type: "button", class: "hidden" }, "Load more");
  const tabs = el(
    "nav",
    { class: "filters" },
    FILTERS.map((f) =>
      el("a", { href: `#/projects/${project.id}?filter=${f}`, class: f === filter ? "on" : "" }, f),
    ),
  );
  const assistSlot = el("span", { id: "assist-slot", "data-needs": "manage" });
  const jobBox = el("div", { class: "job", id: "job-box", "data-needs": "manage" });
  // The page exports what the grid shows: accepted and predicted instances.
  const exportStatuses = ["accepted", "predicted"];
  const formatTable = await formats();
  const workflow = await workflowSection(project, opts); // queues, assignment, filters
  const files = el("input", { type: "file", multiple: true, accept: "image/*" });
  files.addEventListener("change", async () => {
    if (!files.files.length) return;
    // The server refuses a request holding a non-image: name those, upload the rest.
    const chosen = [...files.files];
    const images = chosen.filter(isImageFile);
    const others = chosen.filter((f) => !isImageFile(f));
    if (others.length) {
      const names = others.map((f) => f.name).join(", ");
      if (!images.length) {
        toast(`Not an image, nothing uploaded: ${names}`, "error");
        files.value = "";
        return;
      }
      const ok = window.confirm(
        `Not an image: ${names}.\nUpload the other ${images.length} file(s)?`,
      );
      if (!ok) {
        files.value = "";
        return;
      }
    }
    try {
      const report = await api.upload(project.id, "default", images);
      toast(uploadSummary(report));
      for (const [fname, reason] of report.failures) toast(`${fname}: ${reason}`, "error");
      opts.go(`#/projects/${project.id}?filter=${filter}&t=${Date.now()}`);
    } catch (error) {
      toast(error.message, "error");
    } finally {
      files.value = "";
    }
  });

  root.append(
    el(
      "header",
      { class: "page-head" },
      el("a", { href: "#/", text: "← Projects" }),
      el("h1", { id: "project-name", text: project.name }),
      el("span", {
        class: "muted",
        text: `${project.template.display_name || project.template.name} · ${project.template.keypoints.length} keypoints`,
      }),
    ),
    el(
      "div",
      { class: "actions" },
      el(
        "button",
        { type: "button", id: "review-button", "data-needs": "annotate", onclick: () => opts.startReview() },
        "Review queue (lowest confidence first)",
      ),
      ...exportLinks(project, exportStatuses, formatTable),
      el(
        "button",
        {
          type: "button",
          id: "import-button",
          "data-needs": "manage",
          title: "annotations from CVAT, Label Studio, Supervisely, SLEAP, DeepLabCut, COCO, PoseTrack",
          // After an import the page behind the dialog is drawn again: new datasets,
          // items and counts.
          onclick: () =>
            openImportDialog(project, formatTable, {
              onImported: () => opts.go(`#/projects/${project.id}?filter=${filter}&t=${Date.now()}`),
            }),
        },
        "Import annotations…",
      ),
      el("label", { class: "button", id: "upload-button", "data-needs": "manage" }, "Upload images", files),
      el(
        "button",
        {
          type: "button",
          id: "edit-template",
          "data-needs": "manage",
          onclick: () =>
            openTemplateEditor({
              mode: "project",
              project,
              onDone: (done) => done && opts.go(`#/projects/${project.id}?t=${Date.now()}`),
            }).catch((error) => toast(error.message, "error")),
        },
        "Edit template",
      ),
      assistSlot,
      jobBox,
    ),
    videos.node,
    workflow.node,
    el("div", { class: "grid-head" }, tabs, counter),
    grid,
    more,
  );
  assistControl(project)
    .then((control) => assistSlot.append(control))
    .catch(() => {});
  // A job that finishes changes items: show the grid again (statuses, counts).
  setupJob(jobBox, project, () => refresh().catch((e) => toast(e.message, "error")));

  let offset = 0;
  let ids = [];
  const loadPage = async () => {
    const query = { filter, order: "name", offset, limit: PAGE, ...workflow.params };
    const page = await api.items(project.id, query);
    for (const item of page.items) {
      const card = videos.card(item) || itemCard(item, () => opts.openItem(item.id, ids, filter));
      grid.append(workflow.decorate(card, item));
      ids.push(item.id);
    }
    offset += page.items.length;
    counter.textContent = `${offset} of ${page.total} items`;
    more.classList.toggle("hidden", offset >= page.total);
  };
  const refresh = async () => {
    if (!document.body.contains(grid)) return;
    grid.replaceChildren();
    offset = 0;
    ids = [];
    await loadPage();
  };
  more.addEventListener("click", () => loadPage().catch((e) => toast(e.message, "error")));
  await videos.ready;
  await loadPage();
}

const IMAGE_NAME = /\.(jpe?g|png|webp|bmp|tiff?)$/i;

/** Whether a chosen file is an image the server takes (by type, else by name). */
function isImageFile(file) {
  if (file.type && !file.type.startsWith("image/")) return false;
  return IMAGE_NAME.test(file.name);
}

/** One sentence for an upload report (counts, never raw lists). */
export function uploadSummary(report) {
  const parts = [`Added ${report.added} image${report.added === 1 ? "" : "s"}`];
  const skipped = (report.skipped || []).length;
  if (skipped) parts.push(`${skipped} already in the project`);
  const renamed = (report.renamed || []).length;
  if (renamed) parts.push(`${renamed} renamed (name taken)`);
  const failed = (report.failures || []).length;
  if (failed) parts.push(`${failed} failed`);
  return parts.join(", ") + ".";
}

/** The job label: what the job is doing, in words (no "0/null"). */
export function jobLabel(job) {
  const failures = job.failures && job.failures.length ? `, ${job.failures.length} failed` : "";
  const error = job.error ? `: ${job.error}` : "";
  if (job.status === "queued") return "queued: waiting for the models";
  if (job.status === "running") {
    const of = job.total ? ` of ${job.total}` : "";
    return `running: ${job.done || 0}${of} images${failures}`;
  }
  if (job.status === "done") {
    const skipped = job.skipped ? `, ${job.skipped} skipped (already labeled)` : "";
    return `done: ${job.processed} images labeled, ${job.instances} people found${skipped}${failures}`;
  }
  return `${job.status}${failures}${error}`;
}

/** The card's count: predictions to review, else labeled people (rejected ones are not
 * labels: an image whose every instance was rejected says so). */
export function cardBadge(item) {
  const rejected = item.num_rejected || 0;
  const labeled = item.num_instances - item.num_predicted - rejected;
  if (item.num_predicted) return `${item.num_predicted} predicted`;
  if (labeled > 0) return `${labeled} labeled`;
  return rejected ? `${rejected} rejected` : "";
}

function itemCard(item, open) {
  const badge = cardBadge(item);
  const score = item.min_score === null || item.min_score === undefined ? "" : item.min_score;
  return el(
    "a",
    {
      class: `card card-${item.status}`,
      href: "#",
      dataset: { itemId: String(item.id) },
      title: item.file_name,
      onclick: (e) => {
        e.preventDefault();
        open();
      },
    },
    el("img", { src: item.thumbnail_url, alt: "", loading: "lazy" }),
    el("span", { class: "card-name", text: item.file_name }),
    el(
      "span",
      { class: "card-meta" },
      el("span", { class: `status status-${item.status}`, text: item.status }),
      el("span", { text: ` ${badge}` }),
      score === "" ? null : el("span", { class: "muted", text: ` min ${score.toFixed(2)}` }),
    ),
  );
}

/** The auto-label job control: start, progress bar, cancel; polls while a job runs. */
function setupJob(box, project, onFinished) {
  const progress = el("progress", { max: "1", value: "0", id: "job-progress" });
  const label = el("span", { class: "job-label", id: "job-label" });
  const start = el("button", { type: "button", id: "autolabel-button" }, "Auto-label");
  const cancel = el("button", { type: "button", id: "cancel-job", class: "hidden" }, "Cancel");
  box.append(start, progress, label, cancel);
  let job = null;
  let timer = null;
  let wasRunning = false;

  const show = (j) => {
    job = j;
    const running = j && (j.status === "queued" || j.status === "running");
    start.disabled = Boolean(running);
    cancel.classList.toggle("hidden", !running);
    progress.max = Math.max(1, j ? j.total || 1 : 1);
    progress.value = j ? j.done || 0 : 0;
    if (!j) {
      label.textContent = "";
      return;
    }
    label.textContent = jobLabel(j);
    // What produced the predictions: the job's models and options.
    if (j.options) label.title = `${j.options.detector} + ${j.options.pose}: ${JSON.stringify(j.options)}`;
    if (wasRunning && !running && onFinished) onFinished();
    wasRunning = Boolean(running);
    clearTimeout(timer);
    if (running && document.body.contains(box)) timer = setTimeout(poll, 1000);
  };
  const poll = async () => {
    if (!job || !document.body.contains(box)) return;
    try {
      show(await api.job(job.id));
    } catch (error) {
      label.textContent = error.message;
    }
  };
  start.addEventListener("click", async () => {
    try {
      const started = await openAutolabelDialog(project);
      if (started) show(started);
    } catch (error) {
      toast(error.message, "error");
    }
  });
  cancel.addEventListener("click", async () => {
    if (!job) return;
    try {
      show(await api.cancelJob(job.id));
    } catch (error) {
      toast(error.message, "error");
    }
  });
  api
    .projectJobs(project.id)
    .then((jobs) => {
      // Show the newest job of the project (it polls while still running).
      if (jobs && jobs.length) show(jobs.reduce((a, b) => (b.id > a.id ? b : a)));
    })
    .catch(() => {});
}
