// posekit annotation app: a hash router over three pages.
//   #/                                   project list
//   #/projects/{pid}?filter=F            item grid of a project
//   #/projects/{pid}/items/{iid}?filter=F&order=O[&review=1]   annotation view
//   #/projects/{pid}/videos/{vid}?frame=F   video view (video_view.js)
//
// Test hook (read-only use intended): `window.posekit` exposes
//   view           the current AnnotationView or null
//   state()        plain-data snapshot of the annotation state (instances, selection,
//                  save state, undo depth) or null outside the annotation view
//   clientPoint(key, k) / clientFromImage(x, y)   client (CSS px) position of a keypoint
//                  / of an image point, so tests can drive the mouse precisely
//   frames()       [{t, drawMs}] per drawn frame (rAF timestamp, draw duration)
//   openMs         ms from route change to the first full frame of the last opened item

import { api } from "./api.js";
import { AnnotationView } from "./annotate.js";
import { clear, el, toast } from "./dom.js";
import { renderProjectList, renderProjectPage } from "./projects.js";
import { installMe } from "./me.js";
import { VideoView } from "./video_view.js";

const root = document.getElementById("app");
let current = null; // the active AnnotationView
let navCache = null; // {key, ids, label, review}
const projectCache = new Map();

const go = (hash) => {
  if (location.hash === hash) route();
  else location.hash = hash;
};

async function project(pid) {
  if (!projectCache.has(pid)) projectCache.set(pid, await api.project(pid));
  return projectCache.get(pid);
}

async function listIds(pid, filter, order) {
  const ids = [];
  for (let offset = 0; offset < 5000; ) {
    const page = await api.items(pid, { filter, order, offset, limit: 200 });
    ids.push(...page.items.map((i) => i.id));
    offset += page.items.length;
    if (!page.items.length || offset >= page.total) break;
  }
  return ids;
}

function itemHash(pid, iid, { filter, order, review }) {
  const q = new URLSearchParams({ filter, order });
  if (review) q.set("review", "1");
  return `#/projects/${pid}/items/${iid}?${q}`;
}

async function navFor(pid, iid, filter, order, review) {
  const key = `${pid}|${filter}|${order}|${review ? 1 : 0}`;
  if (!navCache || navCache.key !== key || !navCache.ids.includes(iid)) {
    let ids = await listIds(pid, filter, order);
    if (!ids.includes(iid)) ids = [iid, ...ids];
    navCache = { key, ids };
  }
  return {
    ids: navCache.ids,
    index: navCache.ids.indexOf(iid),
    review,
    label: review ? "review" : filter,
    hrefFor: (id) => itemHash(pid, id, { filter, order, review }),
  };
}

async function startReview(pid) {
  const ids = await listIds(pid, "predicted", "confidence");
  if (!ids.length) {
    toast("No predicted instances to review.", "info");
    return;
  }
  navCache = { key: `${pid}|predicted|confidence|1`, ids };
  go(itemHash(pid, ids[0], { filter: "predicted", order: "confidence", review: true }));
}

async function route() {
  const startedAt = performance.now();
  if (current) {
    current.destroy();
    current = null;
  }
  const [path, query] = (location.hash.replace(/^#/, "") || "/").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const page = el("div", { class: "page" });
  clear(root).append(page);
  document.body.dataset.page = "loading";
  try {
    if (parts[0] === "projects" && parts.length >= 2) {
      const pid = Number(parts[1]);
      const proj = await project(pid);
      if (parts[2] === "videos" && parts[3]) {
        current = new VideoView(page, { project: proj, vid: Number(parts[3]), frame: Number(params.get("frame") || 0), go });
        window.posekit.view = current;
        await current.open(startedAt);
        document.body.dataset.page = "video";
      } else if (parts[2] === "items" && parts[3]) {
        const iid = Number(parts[3]);
        const filter = params.get("filter") || "all";
        const order = params.get("order") || "name";
        const review = params.get("review") === "1";
        const nav = await navFor(pid, iid, filter, order, review);
        document.title = `${proj.name} — posekit`;
        current = new AnnotationView(page, { project: proj, iid, nav, go });
        window.posekit.view = current;
        await current.open(startedAt);
        window.posekit.openMs = current.perf.openMs;
        document.body.dataset.page = "annotate";
      } else {
        projectCache.delete(pid); // counts change while annotating
        const fresh = await project(pid);
        document.title = `${fresh.name} — posekit`;
        await renderProjectPage(page, fresh, {
          filter: params.get("filter") || "all",
          go,
          openItem: (iid, ids, filter) => {
            navCache = { key: `${pid}|${filter}|name|0`, ids: ids.slice() };
            go(itemHash(pid, iid, { filter, order: "name", review: false }));
          },
          startReview: () => startReview(pid).catch((e) => toast(e.message, "error")),
        });
        document.body.dataset.page = "project";
      }
    } else {
      document.title = "posekit";
      await renderProjectList(page, { go });
      document.body.dataset.page = "projects";
    }
  } catch (error) {
    clear(page).append(
      el("p", { class: "error", role: "alert", text: error.message }),
      el("a", { href: "#/", text: "← Projects" }),
    );
    document.body.dataset.page = "error";
  }
}

window.posekit = {
  view: null,
  openMs: null,
  state: () => (current ? current.stateForTests() : null),
  clientPoint: (key, k) => current.clientPoint(key, k),
  clientFromImage: (x, y) => current.clientFromImage(x, y),
  frames: () => (current ? current.perf.frames.slice() : []),
};

window.addEventListener("hashchange", route);
installMe(root); // the logged-in user in the header; controls hidden by role
route();
