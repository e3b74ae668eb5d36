// Calls of the video API (posekit.server.routes.video), through api.js's request rules
// (the X-Posekit-Client header every data-changing call needs).

const HEADERS = { "X-Posekit-Client": "ui" };

/** An HTTP error from the video API; `body` is the parsed JSON (`detail`, maybe `current`). */
export class VideoApiError extends Error {
  constructor(status, body) {
    const detail = body && typeof body.detail === "string" ? body.detail : JSON.stringify(body);
    super(`${status}: ${detail || "request failed"}`);
    this.status = status;
    this.body = body;
  }
}

async function call(method, url, body) {
  const init = { method, headers: { ...HEADERS } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : null;
  if (!response.ok) throw new VideoApiError(response.status, data);
  return data;
}

const base = (vid) => `/api/videos/${vid}`;

export const videoApi = {
  list: (pid) => call("GET", `/api/videos?project_id=${pid}`),
  /** A video's metadata; asking for its seek proxy's state queues a missing one's build. */
  video: (vid) => call("GET", `${base(vid)}?timestamps=true&proxy=true`),
  /** Frame i's JPEG; `maxSide`: scaled down to fit (the view's size), `quality`: JPEG quality. */
  frameUrl: (vid, i, { maxSide = null, quality = null } = {}) => {
    const q = new URLSearchParams();
    if (maxSide) q.set("max_side", String(Math.round(maxSide)));
    if (quality) q.set("quality", String(quality));
    const text = q.toString();
    return `${base(vid)}/frames/${i}${text ? `?${text}` : ""}`;
  },
  thumbnailsUrl: (vid, count, height) => `${base(vid)}/thumbnails?count=${count}&height=${height}`,
  tracks: (vid) => call("GET", `${base(vid)}/tracks`),
  createTrack: (vid, label) => call("POST", `${base(vid)}/tracks`, { label }),
  instances: (vid, i) => call("GET", `${base(vid)}/frames/${i}/instances`),
  setKeyframe: (vid, track, i, body) => call("PUT", `${base(vid)}/tracks/${track}/keyframes/${i}`, body),
  setOutside: (vid, track, i, outside) =>
    call("PUT", `${base(vid)}/tracks/${track}/outside/${i}`, { outside }),
  split: (vid, track, i) => call("POST", `${base(vid)}/tracks/${track}/split`, { frame_index: i }),
  merge: (vid, track, other) => call("POST", `${base(vid)}/tracks/${track}/merge`, { other_track_id: other }),
  propagate: (vid, track, body) => call("POST", `${base(vid)}/tracks/${track}/propagate`, body),
};

const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990"];

/** The colour of a track (stable by id). */
export const trackColor = (id) => PALETTE[(((id ?? 0) % PALETTE.length) + PALETTE.length) % PALETTE.length];
