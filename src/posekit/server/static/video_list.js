// The project page's "Videos" list, and grid cards for frame items (kind "frame",
// file name "<video file>/<6-digit frame>.jpg", in the video's dataset) that show the
// video's name and the frame index and open the video view at that frame instead of
// the image editor (frames imported as images too: the video view shows those).

import { el } from "./dom.js";
import { videoApi } from "./video_api.js";

export const videoHash = (pid, vid, frame = 0) => `#/projects/${pid}/videos/${vid}?frame=${frame}`;

const FRAME_NAME = /^(.*)\/(\d{6})\.jpg$/;

/** {node, ready, card(item)}: the list (empty, hidden when the project has no video);
 *  card(item) is a link card for a frame item, or null for any other item. */
export function videoSection(project) {
  const list = el("ul", { class: "video-list", id: "video-list" });
  const node = el("section", { class: "videos hidden", id: "videos" }, el("h2", { text: "Videos" }), list);
  const byName = new Map(); // "<dataset id>/<file name>" -> video
  const ready = videoApi
    .list(project.id)
    .then((videos) => {
      for (const v of videos) byName.set(`${v.dataset_id}/${v.file_name}`, v);
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
    const video = match && byName.get(`${item.dataset_id}/${match[1]}`);
    if (!video) return null;
    const frame = Number(match[2]);
    const picture = item.has_media ? item.thumbnail_url : videoApi.frameUrl(video.id, frame, { maxSide: 320, quality: 75 });
    const count = item.num_instances === 1 ? "1 instance" : `${item.num_instances} instances`;
    return el(
      "a",
      {
        class: `card card-frame card-${item.status}`,
        href: videoHash(project.id, video.id, frame),
        dataset: { itemId: String(item.id), videoId: String(video.id), frame: String(frame) },
        title: `${video.file_name}, frame ${frame}`,
      },
      el("img", { src: picture, alt: "", loading: "lazy" }),
      el("span", { class: "card-name", text: video.file_name }),
      el(
        "span",
        { class: "card-meta" },
        el("span", { class: `status status-${item.status}`, text: item.status }),
        el("span", { class: "frame-index", text: ` frame ${frame}` }),
        el("span", { class: "muted", text: ` · ${count}` }),
      ),
    );
  };
  return { node, ready, card };
}
