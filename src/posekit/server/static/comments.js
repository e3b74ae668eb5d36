// The comment threads of an item in the annotation view (issue 12): threads with
// replies, resolve / reopen, a composer whose comment attaches to the selected
// keypoint (click one on the canvas) or to the whole item, and the canvas marks of
// keypoints with open comments (AnnotationView.commentMarks, drawn by render.js).

import { request } from "./api.js";
import { el, toast } from "./dom.js";

export const commentApi = {
  list: (iid) => request("GET", `/api/items/${iid}/comments`),
  add: (iid, body) => request("POST", `/api/items/${iid}/comments`, body),
  resolve: (cid, resolved) => request("PATCH", `/api/comments/${cid}`, { resolved }),
};

const when = (iso) => {
  const date = new Date(`${iso}Z`);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
};

/**
 * Add the comment panel to a view.
 * @param {Object} view the AnnotationView
 * @param {HTMLElement} panel where to put it
 * @param {{canComment: boolean}} options
 * @returns {{reload: Function, compose: Function, threads: Function}}
 */
export function attachComments(view, panel, { canComment }) {
  let threads = [];
  let mode = null; // {reject, send(body)} while composing a rejection
  const heading = el("h3", { text: "Comments" });
  const list = el("ol", { class: "threads", id: "comment-threads" });
  const body = el("textarea", {
    id: "comment-body",
    rows: "3",
    maxlength: "10000",
    placeholder: "Comment (select a keypoint first to attach it to that point)",
  });
  const target = el("p", { class: "hint", id: "comment-target" });
  const send = el("button", { type: "button", id: "comment-send" }, "Comment");
  const cancel = el("button", { type: "button", id: "comment-cancel", class: "hidden" }, "Cancel");
  const composer = el("div", { class: "composer", id: "comment-composer" }, target, body, send, cancel);
  panel.append(heading, list);
  if (canComment) panel.append(composer);

  /** The selected keypoint of a saved instance, or null (the comment is on the item). */
  const selection = () => {
    const rec = view.active();
    if (!rec || rec.id === null || rec.id === undefined) return null;
    const chosen = [...(view.selected.get(rec.key) || [])];
    if (!chosen.length) return { instance_id: rec.id, keypoint: null, rec };
    return { instance_id: rec.id, keypoint: Math.min(...chosen), rec };
  };
  const label = (instanceId, keypoint) => {
    if (instanceId === null || instanceId === undefined) return "the whole item";
    const index = view.live().findIndex((r) => r.id === instanceId);
    const who = index >= 0 ? `#${index + 1}` : `instance ${instanceId} (deleted)`;
    if (keypoint === null || keypoint === undefined) return who;
    return `${view.template.keypoints[keypoint] || `keypoint ${keypoint}`} of ${who}`;
  };
  const showTarget = () => {
    const chosen = selection();
    target.textContent = `On: ${chosen ? label(chosen.instance_id, chosen.keypoint) : "the whole item"}`;
    target.dataset.keypoint = chosen && chosen.keypoint !== null ? String(chosen.keypoint) : "";
  };
  view.onSelectionChange = showTarget;

  // Open threads on a keypoint, marked on the canvas where that keypoint is now.
  view.commentMarks = () => {
    const marks = [];
    for (const thread of threads) {
      if (thread.resolved || thread.keypoint === null || thread.instance_id === null) continue;
      const rec = view.records.find((r) => r.id === thread.instance_id && !r.deleted);
      if (!rec || !rec.data.visibility[thread.keypoint]) continue;
      const [x, y] = rec.data.keypoints[thread.keypoint];
      marks.push({ x, y, threadId: thread.id, keypoint: thread.keypoint, instanceId: rec.id });
    }
    return marks;
  };

  const focusThread = (thread) => {
    const rec = view.records.find((r) => r.id === thread.instance_id && !r.deleted);
    if (!rec) return;
    view.select(rec.key, thread.keypoint === null ? [] : [thread.keypoint]);
  };

  const comment = (c) =>
    el(
      "div",
      { class: "comment", dataset: { commentId: String(c.id) } },
      el("strong", { text: c.author || `user ${c.author_id}` }),
      el("span", { class: "muted", text: ` ${when(c.created_at)}` }),
      el("p", { class: "comment-body", text: c.body }),
    );

  const threadNode = (thread) => {
    const reply = el("input", { class: "reply-body", placeholder: "Reply", maxlength: "10000" });
    const actions = canComment
      ? el(
          "div",
          { class: "thread-actions" },
          reply,
          el(
            "button",
            {
              type: "button",
              class: "reply-send",
              onclick: () =>
                act(async () => {
                  if (!reply.value.trim()) return;
                  await commentApi.add(view.iid, { body: reply.value, parent_id: thread.id });
                  await reload();
                }),
            },
            "Reply",
          ),
          el(
            "button",
            {
              type: "button",
              class: thread.resolved ? "reopen" : "resolve",
              onclick: () =>
                act(async () => {
                  await commentApi.resolve(thread.id, !thread.resolved);
                  await reload();
                }),
            },
            thread.resolved ? "Reopen" : "Resolve",
          ),
        )
      : null;
    return el(
      "li",
      {
        class: `thread ${thread.resolved ? "resolved" : "open"}`,
        dataset: {
          threadId: String(thread.id),
          keypoint: thread.keypoint === null ? "" : String(thread.keypoint),
          instanceId: thread.instance_id === null ? "" : String(thread.instance_id),
        },
      },
      el("a", {
        href: "#",
        class: "thread-target",
        text: `On ${label(thread.instance_id, thread.keypoint)}${thread.resolved ? " · resolved" : ""}`,
        onclick: (e) => {
          e.preventDefault();
          focusThread(thread);
        },
      }),
      comment(thread),
      el("div", { class: "replies" }, thread.replies.map(comment)),
      actions,
    );
  };

  const render = () => {
    const open = threads.filter((t) => !t.resolved).length;
    heading.textContent = `Comments (${open} open)`;
    list.replaceChildren(...threads.map(threadNode));
    if (!threads.length) list.append(el("li", { class: "muted", text: "No comments." }));
    panel.dataset.openComments = String(open);
    showTarget();
    view.invalidate();
  };

  const act = async (fn) => {
    try {
      await fn();
    } catch (e) {
      toast(e.message, "error");
    }
  };

  async function reload() {
    threads = await commentApi.list(view.iid);
    if (view.alive) render();
  }

  const stopComposing = () => {
    mode = null;
    body.value = "";
    send.textContent = "Comment";
    composer.classList.remove("rejecting");
    cancel.classList.add("hidden");
  };
  send.addEventListener("click", () =>
    act(async () => {
      if (!body.value.trim()) {
        body.focus();
        throw new Error("write what to fix first");
      }
      const chosen = selection();
      const fields = {
        comment: body.value,
        instance_id: chosen ? chosen.instance_id : null,
        keypoint: chosen ? chosen.keypoint : null,
      };
      if (mode && mode.reject) {
        const { send: decide } = mode;
        await decide(fields);
        stopComposing();
        return;
      }
      await commentApi.add(view.iid, {
        body: fields.comment,
        instance_id: fields.instance_id,
        keypoint: fields.keypoint,
      });
      stopComposing();
      await reload();
    }),
  );
  cancel.addEventListener("click", stopComposing);

  /** Start writing a rejection: the composer's button sends the decision. */
  const compose = (options) => {
    mode = options;
    send.textContent = "Reject with comment";
    composer.classList.add("rejecting");
    cancel.classList.remove("hidden");
    showTarget();
    body.focus();
  };

  reload().catch((e) => toast(e.message, "error"));
  return { reload, compose, threads: () => threads };
}
