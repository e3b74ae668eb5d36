"""The ``posekit`` argument parser: subcommands, options, examples.

Defaults come from the library (:class:`posekit.pipeline.options.AutolabelOptions`,
the format table), never from here.
"""

from __future__ import annotations

import argparse

from posekit.cli.user_commands import add_users_parser
from posekit.engines import ENGINES
from posekit.pipeline.options import SMOOTHING_METHODS, AutolabelOptions

__all__ = ["build_parser"]

EXAMPLES = {
    "demo": """examples:
  posekit demo                 # workspace posekit-demo/, project 'demo', auto-labeled, served
  posekit demo --no-serve      # the same without serving (also writes predictions.json, rendered/)
  posekit demo -o /tmp/demo --port 8080
""",
    "serve": """examples:
  posekit serve                              # ./posekit-data at http://127.0.0.1:8000/
  posekit serve --workspace /data/pk --port 8080
""",
    "predict": """examples:
  posekit predict photos/ -o pred.json --render rendered/
  posekit predict img1.jpg img2.jpg -o pred.json --pose blazepose --detector blazepose
  posekit predict images/ -o pred.json --boxes gt.json                # your boxes (AI-assist case)
  posekit predict images/ -o pred.json --boxes dets.json --images-from gt.json   # COCO results list
  posekit predict clip.mp4 -o tracks.json --render tracked.mp4 --smooth one-euro
  posekit predict long.mp4 -o tracks.json --every 5           # interpolate between sampled frames
""",
    "eval": """examples:
  posekit eval gt.json pred.json
  posekit eval gt.json pred.json --json > scores.json
  posekit eval crowdpose_gt.json pred.json --template crowdpose14
  posekit eval posetrack_val.json tracks.json --tracking     # keypoint MOTA on video
""",
    "init": """examples:
  posekit init myproject --template coco17
  posekit --workspace /data/pk init hands --template hand21
  posekit init custom --template my_skeleton.yaml
""",
    "import": """examples:
  posekit import myproject photos/                      # images (recursive)
  posekit import myproject --coco annotations.json --image-root images/
  posekit import myproject --annotations labels.json --format coco --image-root images/
  posekit import myproject photos/ --dataset batch2
  posekit import myproject clip.mp4 --dataset clips          # a video (frames decoded on demand)
  posekit import myproject clip.mp4 --no-proxy  # the seek proxy is built later by the server
  posekit import myproject --frames-folder frames/ --fps 25  # numbered frames as one video
""",
    "autolabel": """examples:
  posekit autolabel myproject
  posekit autolabel myproject --overwrite --batch-size 16
  posekit autolabel myproject --engine ray --address auto --workers 4 --gpus-per-worker 1
""",
    "export": """examples:
  posekit export myproject --format coco -o labels.json
  posekit export myproject --format coco -o accepted.json --status accepted
  posekit export myproject --format yolo -o yolo_dataset/
  posekit export myproject --format csv-tracks -o tracks.csv  # one row per frame, track, joint
""",
    "render": """examples:
  posekit render pred.json --image-root photos/ -o rendered/
  posekit render gt.json --image-root images/ -o out/ --no-boxes
""",
    "models": """examples:
  posekit models
  posekit models fetch blazepose     # pose, landmark and face .tflite files, once
  posekit predict photos/ -o pred.json --detector rtdetr \\
      --pose vitpose:usyd-community/vitpose-base-simple
""",
    "templates": """examples:
  posekit templates list
  posekit templates show coco17
  posekit templates validate my_skeleton.yaml
""",
}


#: --existing choices (AutolabelOptions.existing), when the options have that field.
EXISTING_CHOICES = ("skip", "beside", "replace-predictions")


def _fraction(text: str) -> float:
    """A score threshold in [0, 1] (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


def add_min_score(
    parser: argparse.ArgumentParser, default: float | None, verb: str, default_text: str = ""
) -> None:
    """The one --min-score flag of predict, autolabel, render and export."""
    shown = default_text or f"{default:g}"
    parser.add_argument(
        "--min-score",
        type=_fraction,
        default=default,
        metavar="S",
        help=f"do not {verb} people whose instance score is below S (instances without a "
        f"score are kept; default {shown})",
    )


def add_oks_nms(
    parser: argparse.ArgumentParser, default: float | None, default_text: str = ""
) -> None:
    """The --oks-nms flag of predict and autolabel."""
    shown = default_text or f"{default:g}"
    parser.add_argument(
        "--oks-nms",
        type=_fraction,
        default=default,
        metavar="T",
        help="of two predicted people on one image whose poses match with OKS >= T, keep "
        f"the higher-scoring one (0 keeps both; default {shown})",
    )


#: ``--database-url`` (global, and on ``serve`` like ``--workspace``).
DATABASE_URL_HELP = (
    "database of the workspace, e.g. postgresql://user:password@host:5432/posekit "
    "(needs posekit[postgres]); media files stay in the workspace folder "
    "(default: $POSEKIT_DATABASE_URL or SQLite posekit.db in the workspace folder)"
)


def build_parser() -> argparse.ArgumentParser:
    from posekit.formats.registry import readable_formats, writable_formats
    from posekit.statuses import INSTANCE_STATUSES

    defaults = AutolabelOptions()
    parser = argparse.ArgumentParser(
        prog="posekit",
        description="2D human pose annotation and auto-labeling: predict, evaluate, render, "
        "and manage annotation projects.",
        epilog="Run 'posekit COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--workspace",
        default=None,
        help="workspace folder holding the project database and media "
        "(default: $POSEKIT_WORKSPACE or ./posekit-data)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help=DATABASE_URL_HELP,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXAMPLES.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add(
        "demo",
        "Create a workspace with the bundled sample images, auto-label them (offline) and "
        "serve the annotation app.",
    )
    p.add_argument(
        "-o",
        "--output",
        default="posekit-demo",
        help="workspace and output folder (reused when run again)",
    )
    p.add_argument("--no-serve", action="store_true", help="prepare everything, do not serve")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=8000)

    p = add("serve", "Serve the web annotation app and its HTTP API on a workspace.")
    p.add_argument(
        "--workspace",
        default=argparse.SUPPRESS,
        help="workspace folder (default: $POSEKIT_WORKSPACE or ./posekit-data)",
    )
    p.add_argument(
        "--database-url", default=argparse.SUPPRESS, metavar="URL", help=DATABASE_URL_HELP
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default loopback only: the app has no login)",
    )
    p.add_argument("--port", type=int, default=8000)

    p = add(
        "predict",
        "Predict every person's pose in images or videos (tracked); write a COCO keypoints "
        "file (videos: with PoseTrack18 video fields and track ids).",
    )
    p.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="image files or folders, or video files"
    )
    p.add_argument("-o", "--output", required=True, help="COCO keypoints JSON to write")
    p.add_argument(
        "--render",
        metavar="DIR|OUT.mp4",
        help="also draw the predictions: images into DIR, a video into OUT.mp4",
    )
    p.add_argument(
        "--every",
        type=int,
        default=defaults.every,
        help="videos: run the models on every N-th frame, interpolate tracks in between "
        f"(default {defaults.every})",
    )
    p.add_argument(
        "--smooth",
        choices=SMOOTHING_METHODS,
        default=defaults.smoothing,
        help=f"videos: temporal smoothing per track and joint (default {defaults.smoothing})",
    )
    p.add_argument("--frames-folder", metavar="DIR", help="a folder of numbered frames as a video")
    p.add_argument("--fps", type=float, help="frame rate of --frames-folder")
    p.add_argument(
        "--boxes",
        metavar="DETS.json",
        help="person boxes instead of the detector: a COCO file (images by file name, "
        "annotations with bbox and optional score) or a COCO results list with --images-from",
    )
    p.add_argument(
        "--images-from", metavar="COCO.json", help="COCO file naming the image ids of --boxes"
    )
    p.add_argument("--min-box-score", type=float, default=0.0, help="drop --boxes below this")
    add_min_score(p, defaults.min_instance_score, "write")
    add_oks_nms(p, defaults.oks_nms_threshold)
    p.add_argument(
        "--detector",
        default=defaults.detector,
        help=f"person detector (default {defaults.detector})",
    )
    p.add_argument(
        "--pose", default=defaults.pose, help=f"pose estimator (default {defaults.pose})"
    )
    p.add_argument("--template", default="coco17", help="output template: preset or file")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)

    p = add("eval", "OKS AP/AR of predictions against ground truth (pycocotools).")
    p.add_argument("ground_truth", metavar="GT.json")
    p.add_argument("predictions", metavar="PRED.json")
    p.add_argument("--template", help="template for the OKS sigmas (default: from GT names)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--tracking",
        action="store_true",
        help="video ground truth: keypoint MOTA/MOTP per joint (PoseTrack definition) on "
        "the labeled frames, instead of OKS AP",
    )

    p = add("init", "Create a project in the workspace.")
    p.add_argument("project")
    p.add_argument("--template", default="coco17", help="preset name or YAML/JSON file")
    p.add_argument("--dataset", default="default", help="first dataset's name")

    p = add("import", "Import images, videos or an annotation file into a project.")
    p.add_argument("project")
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="image files or folders, video files (mp4, mov, mkv, avi, webm, gif, webp)",
    )
    p.add_argument(
        "--frames-folder", metavar="DIR", help="import a folder of numbered frames as one video"
    )
    p.add_argument("--fps", type=float, help="frame rate of --frames-folder")
    p.add_argument(
        "--no-proxy",
        action="store_true",
        help="do not build the videos' seek proxies now (the server builds one in the "
        "background the first time the video is opened)",
    )
    p.add_argument("--annotations", metavar="FILE", help="annotation file to import (see --format)")
    p.add_argument(
        "--format",
        choices=readable_formats(),
        default="coco",
        help="format of --annotations (default coco)",
    )
    p.add_argument("--coco", metavar="FILE", help="COCO keypoints JSON to import (--format coco)")
    p.add_argument(
        "--image-root", metavar="DIR", help="folder the annotation file's image names are under"
    )
    p.add_argument("--dataset", default="default")
    p.add_argument(
        "--missing-media",
        choices=("error", "register"),
        default="error",
        help="images named in the annotation file but not found: error (default, nothing "
        "is imported) or register (import their annotations without the image)",
    )

    p = add("autolabel", "Predict poses for every item of a project (resumable).")
    p.add_argument("project")
    p.add_argument("--dataset", default=defaults.dataset, help="only this dataset")
    p.add_argument("--detector", default=defaults.detector)
    p.add_argument("--pose", default=defaults.pose)
    p.add_argument("--overwrite", action="store_true", help="redo items already labeled")
    add_min_score(p, None, "store", default_text=f"{defaults.min_instance_score:g}")
    add_oks_nms(p, None, default_text=f"{defaults.oks_nms_threshold:g}")
    p.add_argument(
        "--min-box-score",
        type=_fraction,
        default=None,
        help=f"drop detected person boxes below this (default {defaults.min_box_score:g})",
    )
    if hasattr(defaults, "existing"):
        p.add_argument(
            "--existing",
            choices=EXISTING_CHOICES,
            default=None,
            help="images that already have manual labels: skip them, add predictions "
            "beside the labels, or (with --overwrite) only replace earlier predictions "
            f"(default {defaults.existing})",
        )
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument(
        "--device", default=defaults.device, help="cpu, cuda, mps (default: each model's own)"
    )
    p.add_argument(
        "--engine",
        choices=sorted(ENGINES),
        default=defaults.engine,
        help=f"where the models run (default {defaults.engine}; ray: pip install 'posekit[ray]')",
    )
    p.add_argument(
        "--address",
        default=defaults.address,
        help="Ray cluster: auto or ray://HOST:10001 (default: a local Ray instance)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help=f"Ray model workers, each loading the models once (default {defaults.workers})",
    )
    p.add_argument(
        "--gpus-per-worker",
        type=float,
        default=defaults.gpus_per_worker,
        help=f"GPUs each Ray worker reserves (default {defaults.gpus_per_worker:g})",
    )

    p = add("export", "Export a project's annotations.")
    p.add_argument("project")
    p.add_argument("--format", choices=writable_formats(), required=True)
    p.add_argument(
        "-o", "--output", required=True, help="file or folder, as the format needs (yolo: folder)"
    )
    p.add_argument("--dataset", default=None)
    p.add_argument(
        "--status",
        action="append",
        choices=INSTANCE_STATUSES,
        help="only instances with this review status (repeatable; default: the format's "
        "default, accepted only: add --status predicted to export unreviewed predictions)",
    )
    p.add_argument(
        "--all-images",
        action="store_true",
        help="also write images nobody labeled and images whose every instance was rejected "
        "(default: left out, so they do not teach a model that nobody is there)",
    )
    p.add_argument(
        "--with-authors",
        action="store_true",
        help='coco only: write "author": "<username>" on each annotation (who wrote '
        "its current version; left out where unknown)",
    )
    add_min_score(
        p, None, "export", default_text=f"{defaults.min_instance_score:g} for predictions"
    )

    p = add("render", "Draw the skeletons of a COCO keypoints file onto its images.")
    p.add_argument("coco", metavar="COCO.json")
    p.add_argument("--image-root", required=True, metavar="DIR")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--template", help="template (default: from the file's keypoint names)")
    p.add_argument("--no-boxes", action="store_true")
    p.add_argument("--no-scores", action="store_true")
    add_min_score(p, defaults.min_instance_score, "draw")

    p = add(
        "models",
        "List model backends, whether their extra is installed, known checkpoints; "
        "'models fetch blazepose' downloads the BlazePose model files once.",
    )
    p.add_argument("action", nargs="?", choices=("list", "fetch"), default="list")
    p.add_argument("model", nargs="?", help="with fetch: blazepose")

    p = add("templates", "List, show or validate skeleton templates.")
    tsub = p.add_subparsers(dest="templates_command", metavar="ACTION")
    tsub.add_parser("list", help="list shipped presets")
    show = tsub.add_parser("show", help="print a template as YAML")
    show.add_argument("template", help="preset name or file")
    validate = tsub.add_parser("validate", help="check a custom template file")
    validate.add_argument("file")

    add_users_parser(add)
    return parser
