"""The ``posekit`` command line. Each subcommand is a thin call into the library.

Heavy modules are imported inside the subcommand that needs them, so that
``posekit --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

log = logging.getLogger("posekit")

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
""",
    "eval": """examples:
  posekit eval gt.json pred.json
  posekit eval gt.json pred.json --json > scores.json
  posekit eval crowdpose_gt.json pred.json --template crowdpose14
""",
    "init": """examples:
  posekit init myproject --template coco17
  posekit --workspace /data/pk init hands --template hand21
  posekit init custom --template my_skeleton.yaml
""",
    "import": """examples:
  posekit import myproject photos/                      # images (recursive)
  posekit import myproject --coco annotations.json --image-root images/
  posekit import myproject photos/ --dataset batch2
""",
    "autolabel": """examples:
  posekit autolabel myproject
  posekit autolabel myproject --overwrite --batch-size 16
""",
    "export": """examples:
  posekit export myproject --format coco -o labels.json
  posekit export myproject --format coco -o accepted.json --status accepted
  posekit export myproject --format yolo -o yolo_dataset/
""",
    "render": """examples:
  posekit render pred.json --image-root photos/ -o rendered/
  posekit render gt.json --image-root images/ -o out/ --no-boxes
""",
    "models": """examples:
  posekit models
  posekit predict photos/ -o pred.json --detector rtdetr \\
      --pose vitpose:usyd-community/vitpose-base-simple
""",
    "templates": """examples:
  posekit templates list
  posekit templates show coco17
  posekit templates validate my_skeleton.yaml
""",
}


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
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
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default loopback only: the app has no login)",
    )
    p.add_argument("--port", type=int, default=8000)

    p = add("predict", "Predict every person's pose in images; write a COCO keypoints file.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("-o", "--output", required=True, help="COCO keypoints JSON to write")
    p.add_argument("--render", metavar="DIR", help="also draw the predictions into DIR")
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
    p.add_argument("--detector", default="blazepose", help="person detector (default blazepose)")
    p.add_argument("--pose", default="blazepose", help="pose estimator (default blazepose)")
    p.add_argument("--template", default="coco17", help="output template: preset or file")
    p.add_argument("--batch-size", type=int, default=8)

    p = add("eval", "OKS AP/AR of predictions against ground truth (pycocotools).")
    p.add_argument("ground_truth", metavar="GT.json")
    p.add_argument("predictions", metavar="PRED.json")
    p.add_argument("--template", help="template for the OKS sigmas (default: from GT names)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add("init", "Create a project in the workspace.")
    p.add_argument("project")
    p.add_argument("--template", default="coco17", help="preset name or YAML/JSON file")
    p.add_argument("--dataset", default="default", help="first dataset's name")

    p = add("import", "Import images or a COCO keypoints file into a project.")
    p.add_argument("project")
    p.add_argument("paths", nargs="*", metavar="PATH", help="image files or folders")
    p.add_argument("--coco", metavar="FILE", help="COCO keypoints JSON to import")
    p.add_argument("--image-root", metavar="DIR", help="folder the COCO file names are under")
    p.add_argument("--dataset", default="default")

    p = add("autolabel", "Predict poses for every item of a project (resumable).")
    p.add_argument("project")
    p.add_argument("--dataset", default=None)
    p.add_argument("--detector", default="blazepose")
    p.add_argument("--pose", default="blazepose")
    p.add_argument("--overwrite", action="store_true", help="redo items already labeled")
    p.add_argument("--batch-size", type=int, default=8)

    p = add("export", "Export a project's annotations.")
    p.add_argument("project")
    p.add_argument("--format", choices=["coco", "yolo"], required=True)
    p.add_argument("-o", "--output", required=True, help="file (coco) or folder (yolo)")
    p.add_argument("--dataset", default=None)
    p.add_argument(
        "--status",
        action="append",
        choices=["predicted", "accepted", "rejected"],
        help="only instances with this review status (repeatable; default: all but rejected)",
    )

    p = add("render", "Draw the skeletons of a COCO keypoints file onto its images.")
    p.add_argument("coco", metavar="COCO.json")
    p.add_argument("--image-root", required=True, metavar="DIR")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--template", help="template (default: from the file's keypoint names)")
    p.add_argument("--no-boxes", action="store_true")
    p.add_argument("--no-scores", action="store_true")

    add("models", "List model backends, whether their extra is installed, known checkpoints.")

    p = add("templates", "List, show or validate skeleton templates.")
    tsub = p.add_subparsers(dest="templates_command", metavar="ACTION")
    tsub.add_parser("list", help="list shipped presets")
    show = tsub.add_parser("show", help="print a template as YAML")
    show.add_argument("template", help="preset name or file")
    validate = tsub.add_parser("validate", help="check a custom template file")
    validate.add_argument("file")
    return parser


# ---------------------------------------------------------------------------- commands
def _workspace(args: argparse.Namespace):
    from posekit.store import Workspace

    return Workspace(args.workspace)


def _template(spec: str | None):
    from posekit.skeleton import load_template

    return load_template(spec or "coco17")


def cmd_predict(args: argparse.Namespace) -> int:
    from posekit.formats.coco import load_boxes, write_coco
    from posekit.models import create_detector, create_pose_estimator
    from posekit.pipeline.files import predict_files

    skeleton = _template(args.template)
    boxes = None
    if args.boxes:
        boxes = load_boxes(args.boxes, images_from=args.images_from)
        if args.min_box_score > 0:
            boxes = {
                name: dets.subset(dets.scores >= args.min_box_score) for name, dets in boxes.items()
            }
    elif args.images_from:
        raise CliError("--images-from only makes sense with --boxes")
    pose = create_pose_estimator(args.pose)
    detector = None if boxes is not None else create_detector(args.detector)
    try:
        result = predict_files(
            args.inputs,
            skeleton,
            pose,
            detector,
            boxes=boxes,
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
    finally:
        pose.close()
        if detector is not None:
            detector.close()
    for path, reason in result.failures:
        _say(f"skipped {path}: {reason}")
    if not result.dataset.images:
        raise CliError(f"no readable images among the inputs; {args.output} not written")
    write_coco(result.dataset, args.output)
    num_people = sum(len(li.instances) for li in result.dataset.images)
    _say(
        f"{len(result.dataset.images)} images, {num_people} people -> {args.output} "
        f"({result.elapsed:.1f} s)"
    )
    if args.render:
        from posekit.render import render_coco

        written = render_coco(result.dataset, result.paths, Path(args.render))
        _say(f"rendered {len(written)} images -> {args.render}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from posekit.demo import demo_images
    from posekit.formats.coco import write_coco
    from posekit.pipeline.autolabel import autolabel
    from posekit.render import render_coco
    from posekit.skeleton import get_preset
    from posekit.store import NotFoundError, Workspace, import_images, project_to_coco

    out = Path(args.output)
    images = demo_images()
    ws = Workspace(out)
    try:
        try:
            project = ws.get_project("demo")
        except NotFoundError:
            project = ws.create_project("demo", get_preset("coco17"))
        imported = import_images(ws, project, "default", images)
        _say(
            f"posekit demo: workspace {ws.root}, project 'demo': {imported.added} of "
            f"{len(images)} bundled sample images added (see posekit/demo/)"
        )
        report = autolabel(ws, project, progress=not args.quiet)
        _say(f"auto-label: {report.summary()}")
        coco, paths = project_to_coco(ws, project, statuses=["predicted", "accepted"])
        write_coco(coco, out / "predictions.json")
        written = render_coco(coco, paths, out / "rendered")
        _say(
            f"predictions in {out / 'predictions.json'}; {len(written)} rendered images in "
            f"{out / 'rendered'}"
        )
    finally:
        ws.close()
    if args.no_serve:
        return 0
    return _serve(out, args.host, args.port)


def cmd_serve(args: argparse.Namespace) -> int:
    workspace = args.workspace or os.environ.get("POSEKIT_WORKSPACE") or "posekit-data"
    return _serve(Path(workspace), args.host, args.port)


def _serve(workspace: Path, host: str, port: int) -> int:
    """Run the web app on ``workspace`` until interrupted."""
    try:
        import uvicorn

        from posekit.server import Settings, create_app
    except ImportError as exc:
        raise CliError(
            f"the web app needs {exc.name}, which posekit installs: reinstall posekit "
            "(pip install -e .)"
        ) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        _say(f"warning: listening on {host}: anyone who can reach it can edit (there is no login)")
    app = create_app(Settings(workspace=workspace, host=host, port=port))
    shown = f"[{host}]" if ":" in host else host
    _say(f"posekit: serving workspace {workspace} at http://{shown}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from posekit.evaluation import evaluate

    skeleton = _template(args.template) if args.template else None
    result = evaluate(args.ground_truth, args.predictions, skeleton)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.format_table())
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    project = ws.create_project(args.project, _template(args.template))
    ws.get_or_create_dataset(project, args.dataset)
    _say(f"created project {args.project!r} ({args.template}) in {ws.root}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from posekit.store import import_coco, import_images

    if not args.paths and not args.coco:
        raise CliError("give image PATHs and/or --coco FILE")
    ws = _workspace(args)
    project = ws.get_project(args.project)
    dataset = ws.get_or_create_dataset(project, args.dataset)
    status = 0
    if args.coco:
        report = import_coco(ws, project, dataset, args.coco, image_root=args.image_root)
        _say(f"COCO import: {report.summary()}")
        status |= _report_failures(report)
    if args.paths:
        report = import_images(ws, project, dataset, args.paths)
        _say(f"image import: {report.summary()}")
        status |= _report_failures(report)
    return status


def _report_failures(report: Any) -> int:
    for path, reason in report.failures:
        _say(f"skipped {path}: {reason}")
    return 0


def cmd_autolabel(args: argparse.Namespace) -> int:
    from posekit.pipeline.autolabel import autolabel

    ws = _workspace(args)
    project = ws.get_project(args.project)
    report = autolabel(
        ws,
        project,
        detector=args.detector,
        pose=args.pose,
        dataset=args.dataset,
        overwrite=args.overwrite,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    _say(report.summary())
    for name, reason in report.failures:
        _say(f"failed {name}: {reason}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from posekit.store import export_coco, export_yolo

    ws = _workspace(args)
    project = ws.get_project(args.project)
    statuses = args.status or ["predicted", "accepted"]
    if args.format == "coco":
        report = export_coco(ws, project, args.output, dataset=args.dataset, statuses=statuses)
    else:
        report = export_yolo(ws, project, args.output, dataset=args.dataset, statuses=statuses)
    _say(f"exported {args.project!r} as {args.format}: {report.summary()}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from posekit.formats.coco import read_coco
    from posekit.render import render_coco

    skeleton = _template(args.template) if args.template else None
    dataset = read_coco(args.coco, skeleton)
    written = render_coco(
        dataset,
        Path(args.image_root),
        Path(args.output),
        draw_boxes=not args.no_boxes,
        draw_scores=not args.no_scores,
    )
    _say(f"rendered {len(written)} images -> {args.output}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from posekit.models.catalog import list_backends, list_checkpoints

    print("backends (spec / kind / extra / license / installed):")
    for backend in list_backends():
        mark = "yes" if backend.installed else f"no: pip install 'posekit[{backend.extra}]'"
        print(
            f"  {backend.spec:36s} {backend.kind:9s} [{backend.extra}] {backend.license:11s} {mark}"
        )
    print("\nknown checkpoints (published accuracy; see BENCHMARKS.md to reproduce):")
    for ckpt in list_checkpoints():
        value = "-" if ckpt.value is None else f"{ckpt.value:.1f}"
        print(f"  {ckpt.spec:48s} {ckpt.task:8s} {ckpt.metric:22s} {value:>5s}  {ckpt.reference}")
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    from posekit.skeleton import Skeleton, get_preset, list_presets, load_template

    action = args.templates_command or "list"
    if action == "list":
        for name in list_presets():
            preset = get_preset(name)
            print(f"{name:20s} {preset.num_keypoints:4d} keypoints  {preset.display_name}")
    elif action == "show":
        print(load_template(args.template).to_yaml(), end="")
    else:
        skeleton = Skeleton.from_file(args.file)
        print(
            f"{args.file}: valid template {skeleton.name!r} with {skeleton.num_keypoints} "
            f"keypoints, {len(skeleton.edges)} edges, {len(skeleton.flip_pairs)} flip pairs"
        )
    return 0


COMMANDS = {
    "demo": cmd_demo,
    "serve": cmd_serve,
    "predict": cmd_predict,
    "eval": cmd_eval,
    "init": cmd_init,
    "import": cmd_import,
    "autolabel": cmd_autolabel,
    "export": cmd_export,
    "render": cmd_render,
    "templates": cmd_templates,
    "models": cmd_models,
}


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``posekit`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from posekit import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.workspace is None:
        args.workspace = os.environ.get("POSEKIT_WORKSPACE") or None
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except (CliError, ValueError, KeyError, FileNotFoundError, RuntimeError, OSError) as exc:
        if args.verbose:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        _say(f"posekit {args.command}: error: {message}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
