// The logged-in user and what they may do (GET /api/auth/me, posekit.server.routes.auth).
//
// The header of every page shows who is logged in, with a "Log out" button: the
// project pages' and the video view's <header class="page-head">, the annotation
// view's toolbar (it has no other header; there the name alone, the role in its
// tooltip, and a small button).
// Controls marked with data-needs="manage" (or annotate, review, comment, admin) are
// hidden when the user's role in the project on screen lacks that permission: the
// body carries data-can="view annotate ..." for the current project and style.css
// hides the rest (history.js keeps no edit without "annotate"). An annotator has
// "annotate" only on the items assigned to them. The server checks every request anyway (403); this only keeps
// users from clicking what they cannot do.

import { api } from "./api.js";
import { el } from "./dom.js";

let mePromise = null;

/** The logged-in user (cached): {user, is_admin, projects: [{project_id, role, permissions}]}. */
export function loadMe() {
  if (!mePromise) {
    mePromise = api.me().catch((error) => {
      mePromise = null;
      throw error;
    });
  }
  return mePromise;
}

/** The permissions of `me` in a project (null: no project on screen). */
export function permissionsIn(me, projectId) {
  const all = ["view", "annotate", "review", "comment", "manage"];
  if (me.is_admin) return [...all, "admin"];
  if (projectId === null) return me.projects.length ? ["view"] : [];
  const entry = me.projects.find((p) => p.project_id === projectId);
  return entry ? entry.permissions : [];
}

/** Whether `me` may do `permission` in a project. */
export function can(me, projectId, permission) {
  return permissionsIn(me, projectId).includes(permission);
}

function currentProject() {
  const match = /^#\/projects\/(\d+)/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function roleIn(me, projectId) {
  if (me.is_admin) return "admin";
  const entry = me.projects.find((p) => p.project_id === projectId);
  return entry ? entry.role : "";
}

async function logout() {
  await api.logout().catch(() => {});
  location.assign("/login");
}

// `compact`: the annotation view's toolbar has no room to spare (1280 px are full):
// the name alone (the role in its tooltip, long names cut) and a small button.
function whoami(me, compact) {
  const name = me.user.display_name || me.user.username;
  const role = roleIn(me, currentProject());
  const label = role ? `${name} (${role})` : name;
  const shown = el("span", { class: "muted", id: "whoami-name", text: compact ? name : label, title: label });
  const button = el(
    "button",
    { type: "button", id: "logout-button", title: "Log out", "aria-label": "Log out", onclick: logout },
    compact ? "⏻" : "Log out",
  );
  if (compact) {
    Object.assign(shown.style, { maxWidth: "7em", overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" });
  }
  return el("span", { id: "whoami" }, shown, button);
}

// Assignees of items opened by an annotator (item id -> user id or null), refreshed
// on every navigation: an annotator edits only the items assigned to them.
const assignees = new Map();

function itemOnScreen() {
  const match = /^#\/projects\/\d+\/items\/(\d+)/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function permissionsOnScreen(me, pid) {
  let permissions = permissionsIn(me, pid);
  const iid = itemOnScreen();
  if (iid === null || roleIn(me, pid) !== "annotator") return permissions;
  if (!assignees.has(iid)) {
    assignees.set(iid, undefined); // asked once; allowed until the answer comes
    api
      .item(iid)
      .then((detail) => {
        assignees.set(iid, detail.item.assignee_id ?? null);
        apply(me);
      })
      .catch(() => {});
  }
  const assignee = assignees.get(iid);
  if (assignee !== undefined && assignee !== me.user.id) {
    permissions = permissions.filter((p) => p !== "annotate");
  }
  return permissions;
}

function apply(me) {
  const pid = currentProject();
  const can = permissionsOnScreen(me, pid).join(" ");
  if (document.body.dataset.can !== can) document.body.dataset.can = can;
  document.body.dataset.role = roleIn(me, pid);
  const head = document.querySelector("header.page-head, .page > .toolbar");
  if (head && !head.querySelector("#whoami")) head.append(whoami(me, head.matches(".toolbar")));
}

/** Keep the body's permissions and the header's user up to date as pages change. */
export function installMe(root) {
  loadMe()
    .then((me) => {
      apply(me);
      new MutationObserver(() => apply(me)).observe(root, { childList: true, subtree: true });
      window.addEventListener("hashchange", () => {
        assignees.clear();
        apply(me);
      });
    })
    .catch(() => {}); // not logged in: api.js sends the browser to /login
}
