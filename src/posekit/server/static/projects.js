// Project list and project page (item grid, filters, export, auto-label job, upload).

import { api } from "./api.js";
import { clear, el, toast } from "./dom.js";

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

/** One download link per writable format ("Export COCO", "Export YOLO", ...). */
function exportLinks(project, statuses, table) {
  return table
    .filter((format) => format.can_write)
    .map((format) =>
      el("a", {
        class: "button",
        id: `export-${format.name}`,
        href: api.exportUrl(project.id, format.name, statuses),
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
      el("option", { value: t.name }, `${t.display_name} (${t.num_keypoints} keypoints)`),
    ),
  );
  const form = el(
    "form",
    {
      class: "new-project",
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
  );
  root.append(
    el("header", { class: "page-head" }, el("h1", { text: "posekit" })),
    el("h2", { text: "Projects" }),
    list,
    el("h2", { text: "New project" }),
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
  const counter = el("span", { class: "muted" });
  const more = el("button", { type: "button", class: "hidden" }, "Load more");
  const tabs = el(
    "nav",
    { class: "filters" },
    FILTERS.map((f) =>
      el("a", { href: `#/projects/${project.id}?filter=${f}`, class: f === filter ? "on" : "" }, f),
    ),
  );
  const jobBox = el("div", { class: "job", id: "job-box" });
  // The page exports what the grid shows: accepted and predicted instances.
  const exportStatuses = ["accepted", "predicted"];
  const formatTable = await formats();
  const files = el("input", { type: "file", multiple: true, accept: "image/*" });
  files.addEventListener("change", async () => {
    if (!files.files.length) return;
    try {
      const report = await api.upload(project.id, "default", files.files);
      toast(`Added ${report.added}, skipped ${report.skipped}, failed ${report.failures.length}`);
      for (const [fname, reason] of report.failures) toast(`${fname}: ${reason}`, "error");
      opts.go(`#/projects/${project.id}?filter=${filter}&t=${Date.now()}`);
    } catch (error) {
      toast(error.message, "error");
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
        { type: "button", id: "review-button", onclick: () => opts.startReview() },
        "Review queue (lowest confidence first)",
      ),
      ...exportLinks(project, exportStatuses, formatTable),
      el("label", { class: "button" }, "Upload images", files),
      jobBox,
    ),
    el("div", { class: "grid-head" }, tabs, counter),
    grid,
    more,
  );
  setupJob(jobBox, project);

  let offset = 0;
  let ids = [];
  const loadPage = async () => {
    const page = await api.items(project.id, { filter, order: "name", offset, limit: PAGE });
    for (const item of page.items) {
      grid.append(itemCard(item, () => opts.openItem(item.id, ids, filter)));
      ids.push(item.id);
    }
    offset += page.items.length;
    counter.textContent = `${offset} of ${page.total} items`;
    more.classList.toggle("hidden", offset >= page.total);
  };
  more.addEventListener("click", () => loadPage().catch((e) => toast(e.message, "error")));
  await loadPage();
}

function itemCard(item, open) {
  const badge = item.num_predicted
    ? `${item.num_predicted} predicted`
    : item.num_instances
      ? `${item.num_instances} labeled`
      : "";
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
function setupJob(box, project) {
  const progress = el("progress", { max: "1", value: "0", id: "job-progress" });
  const label = el("span", { class: "job-label", id: "job-label" });
  const start = el("button", { type: "button", id: "autolabel-button" }, "Auto-label");
  const cancel = el("button", { type: "button", id: "cancel-job", class: "hidden" }, "Cancel");
  box.append(start, progress, label, cancel);
  let job = null;
  let timer = null;

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
    const failures = j.failures && j.failures.length ? `, ${j.failures.length} failed` : "";
    const error = j.error ? `: ${j.error}` : "";
    label.textContent = `${j.status} ${j.done}/${j.total}${failures}${error}`;
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
      show(
        await api.startJob(project.id, {
          kind: "autolabel",
          dataset: null,
          detector: "blazepose",
          pose: "blazepose",
          overwrite: false,
        }),
      );
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
