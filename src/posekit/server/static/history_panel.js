// "History" of the selected instance in the editor's side panel: every version with
// its author and time (GET /api/instances/{id}/history), and "Restore" of an older
// one as a new version (POST .../history/{version}/restore with the version held).
// A stale restore (someone saved meanwhile) becomes the same conflict as a stale save
// (sync.js: keep mine / take theirs). Used by panel.js: historySection(view, rec).

import { ApiError, request } from "./api.js";
import { el, toast } from "./dom.js";
import { copyData } from "./history.js";

const ACTION = { update: "edited", review: "reviewed", restore: "restored", delete: "deleted" };

const when = (iso) => {
  // The server sends naive UTC times.
  const date = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
};

/** The collapsible "History" section of a record (null for an unsaved one). */
export function historySection(view, rec) {
  if (rec.id === null || rec.id === undefined) return null;
  const state = (view.historyState ||= { open: false, key: null, versions: null, loading: null });
  const body = el("div", { class: "history-list", id: "history-list" });
  const details = el(
    "details",
    {
      class: "history-panel",
      id: "history-panel",
      ontoggle: () => {
        state.open = details.open;
        if (details.open) fill(view, rec, body);
      },
    },
    el("summary", { text: "History" }),
    body,
  );
  if (state.open) {
    details.open = true;
    fill(view, rec, body);
  }
  return details;
}

/** Show the versions of `rec` (fetched once per instance version). */
async function fill(view, rec, body) {
  const state = view.historyState;
  const key = `${rec.id}@${rec.version}`;
  if (state.key !== key) {
    state.key = key;
    state.versions = null;
    state.loading = request("GET", `/api/instances/${rec.id}/history`)
      .then((history) => {
        if (state.key === key) state.versions = history.versions;
      })
      .catch((error) => {
        if (state.key === key) state.key = null;
        throw error;
      });
  }
  if (!state.versions) {
    body.replaceChildren(el("p", { class: "hint", text: "Loading…" }));
    try {
      await state.loading;
    } catch (error) {
      body.replaceChildren(el("p", { class: "hint", text: `History unavailable: ${error.message}` }));
      return;
    }
  }
  if (!body.isConnected || state.key !== key) return;
  body.replaceChildren(render(view, rec, state.versions));
}

function render(view, rec, versions) {
  const list = el("ol", { class: "history-versions", reversed: true });
  for (const v of [...versions].reverse()) {
    const author = v.author || "unknown";
    const ended = v.current
      ? " (current)"
      : ` · ${ACTION[v.replaced_by_action] || v.replaced_by_action} by ${v.replaced_by_name || "unknown"}`;
    const labeled = v.visibility.filter((x) => x).length;
    list.append(
      el(
        "li",
        {
          class: `history-version${v.current ? " current" : ""}`,
          dataset: { version: String(v.version) },
        },
        el("span", { class: "history-head", text: `v${v.version} ${author}` }),
        el("span", {
          class: "muted",
          text: ` ${when(v.written_at)} · ${v.status} · ${labeled}/${view.K}${ended}`,
        }),
        v.current
          ? null
          : el(
              "button",
              {
                type: "button",
                class: "history-restore",
                title: `Write version ${v.version} back as a new version`,
                onclick: () => restore(view, rec, v.version),
              },
              "Restore",
            ),
      ),
    );
  }
  return list;
}

/** Restore a version of `rec` (after saving pending edits), like a save: a 409 keeps
 * the local data and shows the conflict box with the server's copy. */
async function restore(view, rec, version) {
  if (rec.dirty && !(await view.flush())) {
    toast("Save or resolve your edits first, then restore.", "error");
    return;
  }
  if (rec.conflict) {
    toast("Resolve the conflict first, then restore.", "error");
    return;
  }
  try {
    const saved = await request("POST", `/api/instances/${rec.id}/history/${version}/restore`, {
      expected_version: rec.version,
    });
    // The server's new version is what we now hold: an undoable step, nothing to send.
    view.edit(`restore version ${version}`, [rec], () => {
      rec.data = copyData(saved);
      rec.deleted = false;
    });
    rec.version = saved.version;
    rec.dirty = false;
    view.updateSaveStatus();
    toast(`Restored version ${version} as version ${saved.version}.`);
  } catch (error) {
    view.historyState.key = null; // fetch the history again
    if (error instanceof ApiError && error.status === 409 && error.body && error.body.current) {
      rec.conflict = { current: error.body.current };
      view.invalidate();
      view.updatePanel();
      view.updateSaveStatus();
      return;
    }
    toast(`Restore failed: ${error.message}`, "error");
    view.updatePanel();
  }
}
