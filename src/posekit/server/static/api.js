// Thin fetch wrapper over the posekit JSON API (see docs of /api in the OpenAPI schema).

/** An HTTP error from the API; `body` is the parsed JSON error (with `detail`, maybe `current`). */
export class ApiError extends Error {
  constructor(status, body, url) {
    const detail = body && typeof body.detail === "string" ? body.detail : JSON.stringify(body);
    super(`${status}: ${detail || "request failed"} (${url})`);
    this.status = status;
    this.body = body;
  }
}

// Sent on every call: the server refuses browser requests that change data without it
// (a page of another site cannot add it to a form post), see posekit.server.security.
const CLIENT_HEADERS = { "X-Posekit-Client": "ui" };

export async function request(method, url, body, { form = false } = {}) {
  const init = { method, headers: { ...CLIENT_HEADERS } };
  if (body !== undefined) {
    if (form) init.body = body;
    else {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  const response = await fetch(url, init);
  // Not logged in (or the session ended): to the login page, then back here.
  if (response.status === 401 && !url.startsWith("/api/auth/login")) toLogin();
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, data, url);
  return data;
}

/** Open the login page; after logging in the browser comes back to this view. */
export function toLogin() {
  if (location.pathname === "/login") return;
  const next = location.hash ? `?next=${encodeURIComponent(location.hash)}` : "";
  location.assign(`/login${next}`);
}

const q = (params) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(key, v));
    else search.append(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
};

export const api = {
  // Login and the logged-in user (posekit.server.routes.auth); see me.js.
  me: () => request("GET", "/api/auth/me"),
  logout: () => request("POST", "/api/auth/logout"),
  templates: () => request("GET", "/api/templates"),
  formats: () => request("GET", "/api/formats"),
  projects: () => request("GET", "/api/projects"),
  // A preset name, or (template null) a template definition in the YAML/JSON layout.
  createProject: (name, template, definition = null) =>
    request("POST", "/api/projects", definition ? { name, template_definition: definition } : { name, template }),
  project: (pid) => request("GET", `/api/projects/${pid}`),
  items: (pid, params) => request("GET", `/api/projects/${pid}/items${q(params)}`),
  item: (iid) => request("GET", `/api/items/${iid}`),
  imageUrl: (iid) => `/api/items/${iid}/image`,
  createInstance: (iid, inst) => request("POST", `/api/items/${iid}/instances`, inst),
  updateInstance: (id, inst) => request("PUT", `/api/instances/${id}`, inst),
  deleteInstance: (id, version) => request("DELETE", `/api/instances/${id}${q({ version })}`),
  // Without a model: this session's choice (model_choice.js), else the project's setting.
  assist: (iid, box, model) =>
    request("POST", `/api/items/${iid}/assist`, {
      box,
      model: model || sessionStorage.getItem("posekit.assistModel") || undefined,
    }),
  startJob: (pid, spec) => request("POST", `/api/projects/${pid}/jobs`, spec),
  job: (jid) => request("GET", `/api/jobs/${jid}`),
  projectJobs: (pid) => request("GET", `/api/projects/${pid}/jobs`),
  cancelJob: (jid) => request("POST", `/api/jobs/${jid}/cancel`),
  upload: (pid, dataset, files) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    return request("POST", `/api/projects/${pid}/upload${q({ dataset })}`, form, { form: true });
  },
  // Project setup (template editor, models, settings): posekit.server.routes.setup.
  templateDefinition: (name) => request("GET", `/api/templates/${encodeURIComponent(name)}/definition`),
  validateTemplate: (body) => request("POST", "/api/templates/validate", body),
  projectTemplate: (pid) => request("GET", `/api/projects/${pid}/template`),
  previewTemplateChange: (pid, body) => request("POST", `/api/projects/${pid}/template/preview`, body),
  changeTemplate: (pid, body) => request("PUT", `/api/projects/${pid}/template`, body),
  models: (task) => request("GET", `/api/models${q({ task })}`),
  settings: (pid) => request("GET", `/api/projects/${pid}/settings`),
  patchSettings: (pid, changes) => request("PATCH", `/api/projects/${pid}/settings`, changes),
  exportUrl: (pid, format, statuses, extra = {}) =>
    `/api/projects/${pid}/export${q({ format, status: statuses, ...extra })}`,
};
