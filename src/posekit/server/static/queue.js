// Team workflow in the UI (issue 12): the queues ("Next item", "Next to review"),
// "Submit for review", the reviewer's "Accept" / "Reject with comment", the grid's
// stage / assignee / open-comment filters with per-card badges, and the manager's
// "Assign" dialog. The server checks every request; what a role cannot do is hidden.
//
// Hooks: projects.js calls workflowSection() on the project page; annotate.js calls
// attachWorkflow() once the annotation view is built. Queue navigation carries
// `queue=annotator|reviewer` in the item's hash.

import { request } from "./api.js";
import { attachComments } from "./comments.js";
import { el, toast } from "./dom.js";

export const teamApi = {
  me: () => request("GET", "/api/auth/me"),
  members: (pid) => request("GET", `/api/projects/${pid}/members`),
  counts: (pid) => request("GET", `/api/projects/${pid}/workflow`),
  assign: (pid, body) => request("POST", `/api/projects/${pid}/assign`, body),
  // role: "annotator" or "reviewer"; null when the queue is empty (204).
  next: (pid, role) => request("POST", `/api/projects/${pid}/queue/${role}/next`),
  submit: (iid) => request("POST", `/api/items/${iid}/submit`),
  decide: (iid, body) => request("POST", `/api/items/${iid}/decision`, body),
};

export const STAGES = ["annotation", "review", "done"];

let mePromise = null;

/** The logged-in user with their roles (GET /api/auth/me), fetched once per page load. */
export function me() {
  if (!mePromise) {
    mePromise = teamApi.me().catch((error) => {
      mePromise = null;
      throw error;
    });
  }
  return mePromise;
}

/** The permissions (Set of "view", "annotate", "review", "comment", "manage") of the
 * logged-in user in a project; a workspace admin has all of them. */
export async function permissions(pid) {
  const who = await me();
  if (who.is_admin) return new Set(["view", "annotate", "review", "comment", "manage"]);
  const membership = (who.projects || []).find((p) => p.project_id === pid);
  return new Set(membership ? membership.permissions : []);
}

/** The query of the current hash (#/path?query). */
function hashParams() {
  return new URLSearchParams(location.hash.split("?")[1] || "");
}

/** The hash of an item opened from a queue. */
export function queueHash(pid, iid, role) {
  return `#/projects/${pid}/items/${iid}?filter=all&order=name&queue=${role}`;
}

/** Claim the next item of a queue and open it; false (with a message) when it is empty. */
export async function openNext(pid, role, go) {
  const item = await teamApi.next(pid, role);
  if (!item) {
    toast(role === "reviewer" ? "Nothing to review." : "Your queue is empty.", "info");
    return false;
  }
  go(queueHash(pid, item.id, role));
  return true;
}

// ------------------------------------------------------------------ project page

/**
 * The workflow part of a project page.
 * @returns {Promise<{node: HTMLElement, params: Object, decorate: Function}>} the bar
 *   (counts, filters, queue and assign buttons), the item-listing query parameters of
 *   the filters in the hash, and decorate(card, item) adding badges and a selection box.
 */
export async function workflowSection(project, { go }) {
  const pid = project.id;
  const [who, can, counts, members] = await Promise.all([
    me(),
    permissions(pid),
    teamApi.counts(pid),
    teamApi.members(pid).catch(() => []),
  ]);
  const query = hashParams();
  const params = {
    stage: STAGES.includes(query.get("stage")) ? query.get("stage") : undefined,
    assignee: query.get("assignee") || undefined,
    open_comments: query.get("open") === "1" ? true : undefined,
  };
  const selected = new Set();
  const setParam = (name, value) => {
    const next = hashParams();
    if (value) next.set(name, value);
    else next.delete(name);
    next.set("t", String(Date.now()));
    go(`#/projects/${pid}?${next}`);
  };

  const stage = el(
    "select",
    { id: "stage-filter", title: "Workflow stage", onchange: () => setParam("stage", stage.value) },
    el("option", { value: "" }, "any stage"),
    STAGES.map((s) => el("option", { value: s, selected: s === params.stage }, s)),
  );
  const people = members.filter((m) => m.role === "annotator" || m.role === "manager");
  const assignee = el(
    "select",
    { id: "assignee-filter", title: "Assigned to", onchange: () => setParam("assignee", assignee.value) },
    el("option", { value: "" }, "anyone"),
    el("option", { value: "none", selected: params.assignee === "none" }, "nobody"),
    el("option", { value: who.user.username, selected: params.assignee === who.user.username }, "me"),
    people
      .filter((m) => m.username !== who.user.username)
      .map((m) => el("option", { value: m.username, selected: m.username === params.assignee }, m.username)),
  );
  const open = el("input", {
    type: "checkbox",
    id: "open-comments-filter",
    checked: Boolean(params.open_comments),
    onchange: () => setParam("open", open.checked ? "1" : ""),
  });
  const summary = [
    `annotation ${counts.annotation}`,
    `review ${counts.review}`,
    `done ${counts.done}`,
    counts.open_comments ? `${counts.open_comments} with open comments` : null,
  ].filter(Boolean);
  const mine = can.has("annotate")
    ? ` · mine: ${counts.mine}${counts.to_fix ? ` (${counts.to_fix} to fix)` : ""}`
    : "";
  const button = (id, label, action) =>
    el("button", { type: "button", id, onclick: () => action().catch((e) => toast(e.message, "error")) }, label);
  const node = el(
    "div",
    { class: "workflow-bar", id: "workflow-bar" },
    can.has("annotate") ? button("next-item", "Next item", () => openNext(pid, "annotator", go)) : null,
    can.has("review") ? button("next-review", "Next to review", () => openNext(pid, "reviewer", go)) : null,
    can.has("manage")
      ? button("assign-button", "Assign…", () =>
          openAssignDialog(project, people, [...selected]).then((done) => done && setParam("t", "")),
        )
      : null,
    el("span", { class: "muted", id: "workflow-counts", text: summary.join(" · ") + mine }),
    el("span", { class: "grow" }),
    stage,
    assignee,
    el("label", { title: "Only items with unresolved comments" }, open, " open comments"),
  );

  const decorate = (card, item) => {
    if (!card || !item.stage) return card;
    const meta = card.querySelector(".card-meta") || card;
    const badges = [
      el("span", { class: `wf-stage wf-stage-${item.stage}`, text: item.stage }),
      item.assignee ? el("span", { class: "muted card-assignee", text: ` @${item.assignee}` }) : null,
      item.open_comments
        ? el("span", { class: "badge-comments", title: "open comments", text: ` 💬${item.open_comments}` })
        : null,
    ];
    meta.append(...badges.filter(Boolean));
    if (can.has("manage")) {
      const box = el("input", {
        type: "checkbox",
        class: "card-select",
        title: "Select for assigning",
        dataset: { itemId: String(item.id) },
        onclick: (e) => {
          e.stopPropagation();
          if (box.checked) selected.add(item.id);
          else selected.delete(item.id);
        },
      });
      card.prepend(box);
    }
    return card;
  };
  return { node, params, decorate };
}

/** The manager's dialog: the selected items, an id range or the next N unlabeled items
 * to an annotator (or to nobody). Resolves true once assigned, false when cancelled. */
export function openAssignDialog(project, people, selectedIds) {
  const mode = el(
    "select",
    { id: "assign-mode" },
    el("option", { value: "selected", disabled: !selectedIds.length, selected: selectedIds.length > 0 }, `the ${selectedIds.length} selected items`),
    el("option", { value: "next", selected: !selectedIds.length }, "the next unlabeled items"),
    el("option", { value: "range" }, "the items with ids from … to …"),
  );
  const count = el("input", { type: "number", id: "assign-count", min: "1", max: "10000", value: "10" });
  const first = el("input", { type: "number", id: "assign-first", min: "1", placeholder: "first id" });
  const last = el("input", { type: "number", id: "assign-last", min: "1", placeholder: "last id" });
  const user = el(
    "select",
    { id: "assign-user" },
    people.map((m) => el("option", { value: m.username }, `${m.username} (${m.role})`)),
    el("option", { value: "" }, "nobody (unassign)"),
  );
  const error = el("p", { class: "error", id: "assign-error", role: "alert" });
  const row = (label, ...inputs) => el("tr", {}, el("td", { text: label }), el("td", {}, ...inputs));
  const countRow = row("How many", count);
  const rangeRow = row("Ids", first, " – ", last);
  const showRows = () => {
    countRow.classList.toggle("hidden", mode.value !== "next");
    rangeRow.classList.toggle("hidden", mode.value !== "range");
  };
  mode.addEventListener("change", showRows);
  showRows();

  return new Promise((resolve) => {
    const overlay = el("div", { class: "dialog", id: "assign-dialog", role: "dialog" });
    const close = (done) => {
      overlay.remove();
      resolve(done);
    };
    const assign = async () => {
      const body = { assignee: user.value || null };
      if (mode.value === "selected") body.item_ids = selectedIds;
      else if (mode.value === "next") body.next_unlabeled = Number(count.value);
      else {
        body.first_item_id = Number(first.value);
        body.last_item_id = Number(last.value);
      }
      try {
        const result = await teamApi.assign(project.id, body);
        const who = result.assignee ? `to ${result.assignee}` : "to nobody";
        toast(`Assigned ${result.item_ids.length} item${result.item_ids.length === 1 ? "" : "s"} ${who}.`);
        close(true);
      } catch (e) {
        error.textContent = e.message;
      }
    };
    overlay.append(
      el(
        "div",
        { class: "dialog-box" },
        el("h2", { text: "Assign items" }),
        el("table", { class: "form-table" }, row("Assign", mode), countRow, rangeRow, row("To", user)),
        error,
        el("button", { type: "button", id: "assign-ok", onclick: assign }, "Assign"),
        el("button", { type: "button", id: "assign-cancel", onclick: () => close(false) }, "Cancel"),
      ),
    );
    document.body.append(overlay);
  });
}

// ------------------------------------------------------------------ annotation view

/**
 * Add the workflow to an open AnnotationView: a panel on top of its side panel with
 * the stage, Submit / Accept / Reject buttons, the queue's "Next" button and comments.
 */
export function attachWorkflow(view) {
  // On top of the side panel: updatePanel (panel.js) puts this same node back each
  // time it rebuilds the panel. Filled in once `me` is known.
  const group = el("div", { class: "workflow-tools", id: "workflow-tools" });
  const panel = el("section", { class: "workflow-panel", id: "workflow-panel" }, group);
  view.workflowPanel = panel;
  view.updatePanel();
  return fillWorkflowPanel(view, panel, group);
}

async function fillWorkflowPanel(view, panel, group) {
  const pid = view.project.id;
  const [who, can] = await Promise.all([me(), permissions(pid)]);
  if (!view.alive) return;
  const role = hashParams().get("queue") || (can.has("annotate") ? "annotator" : "reviewer");
  const comments = attachComments(view, panel, { canComment: can.has("comment") });

  const next = async () => {
    const ok = await view.flush();
    if (!ok) return toast("Some edits are not saved yet.", "error");
    if (!(await openNext(pid, role, view.go))) view.go(`#/projects/${pid}`);
  };
  const act = (label, fn) => async () => {
    try {
      await fn();
    } catch (e) {
      toast(`${label}: ${e.message}`, "error");
    }
  };
  const button = (id, label, title, action) =>
    el("button", { type: "button", id, title, onclick: act(label, action) }, label);

  const render = () => {
    const item = view.item;
    const buttons = el("div", { class: "workflow-buttons" });
    group.replaceChildren(
      el(
        "p",
        {},
        el("span", { class: `wf-stage wf-stage-${item.stage}`, id: "stage-badge", text: item.stage }),
        item.assignee ? el("span", { class: "muted", id: "item-assignee", text: ` @${item.assignee}` }) : null,
        item.reviewer ? el("span", { class: "muted", text: ` · reviewer ${item.reviewer}` }) : null,
      ),
      buttons,
    );
    const mineToSubmit = item.stage === "annotation" && (item.assignee_id === who.user.id || can.has("manage"));
    if (mineToSubmit && can.has("annotate")) {
      buttons.append(
        button("submit-button", "Submit for review", "Send this item to a reviewer", async () => {
          if (!(await view.flush())) throw new Error("some edits are not saved yet");
          view.item = await teamApi.submit(view.iid);
          toast("Submitted for review.");
          render();
          await next();
        }),
      );
    }
    if (item.stage === "review" && can.has("review")) {
      buttons.append(
        button("accept-item", "Accept", "Accept this item (done)", async () => {
          view.item = await teamApi.decide(view.iid, { decision: "accept" });
          toast("Accepted.");
          render();
          await comments.reload();
          await next();
        }),
        button("reject-item", "Reject with comment…", "Send it back with a comment (click a keypoint to attach it)", async () =>
          comments.compose({
            reject: true,
            send: async (body) => {
              view.item = await teamApi.decide(view.iid, { decision: "reject", ...body });
              toast("Sent back to the annotator.");
              render();
              await comments.reload();
              await next();
            },
          }),
        ),
      );
    }
    buttons.append(button("queue-next", role === "reviewer" ? "Next to review" : "Next item", "Next item of your queue", next));
  };
  render();
}
