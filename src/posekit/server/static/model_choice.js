// Model choices from GET /api/models: selects that offer only models that can run here
// (the others are listed disabled, with the reason), and the AI-assist model of the
// project (a project setting) with a per-session override.

import { api } from "./api.js";
import { el, toast } from "./dom.js";

const SESSION_KEY = "posekit.assistModel";
let modelsPromise = null;

/** Every model choice (fetched once per page load). */
export function models() {
  if (!modelsPromise) {
    modelsPromise = api.models().catch((error) => {
      modelsPromise = null;
      throw error;
    });
  }
  return modelsPromise;
}

/** A <select> of the models of `task` ("detector" | "pose"); `chosen` preselected. */
export function modelSelect(list, task, chosen, attrs = {}) {
  const options = list
    .filter((m) => m.task === task)
    .map((m) =>
      el(
        "option",
        {
          value: m.spec,
          disabled: !m.available,
          selected: m.spec === chosen,
          title: m.reason || m.path || m.spec,
        },
        m.available ? m.title : `${m.title} — ${m.reason}`,
      ),
    );
  return el("select", attrs, options);
}

/** This session's assist model (overrides the project's setting), or null. */
export const sessionAssistModel = () => sessionStorage.getItem(SESSION_KEY);

/** The "Assist model" control of a project page: project setting + session override. */
export async function assistControl(project) {
  const list = await models();
  const session = sessionAssistModel();
  const select = modelSelect(list, "pose", session || project.assist_model, { id: "assist-model" });
  const onlySession = el("input", { type: "checkbox", id: "assist-session-only", checked: Boolean(session) });
  const save = async () => {
    try {
      if (onlySession.checked) sessionStorage.setItem(SESSION_KEY, select.value);
      else {
        sessionStorage.removeItem(SESSION_KEY);
        await api.patchSettings(project.id, { assist_model: select.value });
        project.assist_model = select.value;
      }
      toast(`AI-assist model: ${select.value}${onlySession.checked ? " (this session)" : ""}`, "info");
    } catch (error) {
      toast(error.message, "error");
    }
  };
  select.addEventListener("change", save);
  onlySession.addEventListener("change", save);
  return el(
    "span",
    { class: "assist-model" },
    el("span", { class: "muted", text: "Assist model " }),
    select,
    el("label", { class: "muted" }, onlySession, " this session only"),
  );
}
