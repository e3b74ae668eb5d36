// The project page's "Videos" list, and grid cards for frame items (kind "frame",
// file name "<video file>/<6-digit frame>.jpg") that open the video view at that frame
// instead of the image editor.

import { el } from "./dom.js";
import { videoApi } from "./video_api.js";

export const videoHash = (pid, vid, frame = 0) => `#/projects/${pid}/videos/${vid}?frame=${frame}`;

const FRAME_NAME = /^(.*)\/(\d{6})\.jpg$/;

/** {node, ready, card(item)}: the list (empty, hidden when the project has no video);
 *  card(item) is a link card for a frame item, or null for any other item. */
export function videoSection(project) {
  const list = el("ul", { class: "video-list", id: "video-list" });
  const node = el("section", { class: "videos hidden", id: "videos" }, el("h2", { text: "Videos" }), list);
  const byName = new Map();
  const ready = videoApi
    .list(project.id)
    .then((videos) => {
      for (const v of videos) byName.set(v.file_name, v);
      list.replaceChildren(
        ...videos.map((v) =>
          el(
            "li",
            {},
            el("a", { href: videoHash(project.id, v.id), dataset: { videoId: String(v.id) }, text: v.file_name }),
            el("span", { class: "muted", text: ` ${v.frame_count} frames · ${v.fps.toFixed(2)} fps · ${v.status}` }),
          ),
        ),
      );
      node.classList.toggle("hidden", !videos.length);
    })
    .catch(() => {});
  const card = (item) => {
    const match = FRAME_NAME.exec(item.file_name);
    const video = match && byName.get(match[1]);
    if (!video || item.has_media) return null;
    const frame = Number(match[2]);
    return el(
      "a",
      { class: `card card-${item.status}`, href: videoHash(project.id, video.id, frame), dataset: { itemId: String(item.id), videoId: String(video.id) }, title: item.file_name },
      el("img", { src: videoApi.frameUrl(video.id, frame), alt: "", loading: "lazy" }),
      el("span", { class: "card-name", text: item.file_name }),
      el("span", { class: "card-meta" }, el("span", { class: `status status-${item.status}`, text: item.status }), ` frame ${frame}`),
    );
  };
  return { node, ready, card };
}
