"""Server memory for one large image: RSS before and after GET /api/items/{id}/image.

Writes a ``--side`` x ``--side`` JPEG, imports it into a fresh workspace with the
library, starts the real server (uvicorn subprocess on 127.0.0.1), and reads the
server's RSS (``/proc/<pid>/status``: VmRSS now, VmHWM peak) before, after the image
request (which decodes the image for AI-assist in the background) and after a
thumbnail. ``--src DIR`` runs another source tree (before/after figures, e.g. the
previous release from ``git archive HEAD | tar -x -C /tmp/old``). Linux only.

Example:
    python benchmarks/image_memory.py --side 10000
    python benchmarks/image_memory.py --side 12000 --src /tmp/old/src
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def write_jpeg(path: Path, side: int) -> None:
    """A smooth picture with some texture (encodes fast, decodes like a photo)."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, side, dtype=np.float32)
    tile = np.random.default_rng(0).integers(0, 40, (256, 256), dtype=np.uint8)
    texture = np.tile(tile, (side // 256 + 1, side // 256 + 1))[:side, :side]
    red = (ramp[None, :] * 0.8).astype(np.uint8) + texture
    green = (ramp[:, None] * 0.8).astype(np.uint8) + texture
    blue = np.full((side, side), 90, np.uint8)
    Image.fromarray(np.dstack([red, green, blue])).save(path, "JPEG", quality=85)


def fill(workspace: Path, image: Path) -> None:
    from posekit.skeleton import get_preset
    from posekit.store import Workspace, import_images

    with Workspace(workspace) as ws:
        ws.create_project("big", get_preset("coco17"))
        report = import_images(ws, "big", "default", [image])
        print(json.dumps({"import": str(report)[:300]}), file=sys.stderr)


def _rss_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def _settle(pid: int, seconds: float = 20.0) -> dict[str, float]:
    """RSS once it stops changing (the background decode has finished)."""
    deadline = time.monotonic() + seconds
    last = _rss_mb(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _rss_mb(pid)
        if abs(now["VmRSS"] - last["VmRSS"]) < 1.0:
            return now
        last = now
    return last


def run(args: argparse.Namespace) -> dict:
    src = Path(args.src).resolve() if args.src else None
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    with tempfile.TemporaryDirectory(prefix="posekit-memory-") as tmp:
        image = Path(tmp) / f"big-{args.side}.jpg"
        write_jpeg(image, args.side)
        file_mb = round(image.stat().st_size / 2**20, 1)
        workspace = Path(tmp) / "ws"
        env["POSEKIT_WORKSPACE"] = str(workspace)
        subprocess.run(
            [sys.executable, __file__, "--fill-only", str(workspace), str(image)],
            env=env, check=True,
        )  # fmt: skip
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "posekit.server.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
        )  # fmt: skip
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            from _server import auth_headers  # benchmarks/

            # Another source tree (--src): its workspace must not be opened by this one.
            auth = {} if src else auth_headers(workspace)
            with httpx.Client(base_url=url, timeout=120, headers=auth) as client:
                pid = client.get("/api/projects").json()[0]["id"]
                items = client.get(f"/api/projects/{pid}/items").json()["items"]
                if not items:
                    return {"source": str(src or "this checkout"), "side": args.side,
                            "imported": False}  # fmt: skip
                before = _settle(server.pid, 3)
                image_status = client.get(f"/api/items/{items[0]['id']}/image").status_code
                after_image = _settle(server.pid)
                thumb = client.get(f"/api/items/{items[0]['id']}/thumbnail")
                after_thumbnail = _settle(server.pid, 10)
        finally:
            server.terminate()
            server.wait(30)
    return {
        "source": str(src or "this checkout"),
        "side": args.side,
        "file_mb": file_mb,
        "image_status": image_status,
        "thumbnail_status": thumb.status_code,
        "rss_before_mb": before,
        "rss_after_image_mb": after_image,
        "rss_after_thumbnail_mb": after_thumbnail,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=10_000)
    parser.add_argument("--src", help="run the server from this source tree (its src/)")
    parser.add_argument(
        "--fill-only", nargs=2, metavar=("WORKSPACE", "IMAGE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.fill_only:
        fill(Path(args.fill_only[0]), Path(args.fill_only[1]))
        return
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
