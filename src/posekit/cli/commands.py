"""The ``posekit`` subcommands: each a thin call into the library.

Heavy modules are imported inside the subcommand that needs them, so that
``posekit --help`` stays instant. Progress bars and printed summaries live here,
not in the library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from posekit.pipeline.options import AutolabelOptions

__all__ = ["COMMANDS", "CliError"]


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def _say(message: str) -> None:
    print(message, file=sys.stderr)


@contextmanager
def _progress_bar(description: str, quiet: bool) -> Iterator[Callable[[int, int | None], None]]:
    """A Rich progress bar fed by a pipeline's ``progress(done, total)`` callback."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:.1f} items/s" if task.speed else "", style="progress.data")

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        disable=quiet,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


# ---------------------------------------------------------------------------- commands
def _workspace(args: argparse.Namespace):
    from posekit.store import Workspace

    return Workspace(args.workspace)


def _template(spec: str | None):
    from posekit.skeleton import load_template

    return load_template(spec or "coco17")


def cmd_predict(args: argparse.Namespace) -> int:
    from posekit.formats.coco import write_coco
    from posekit.models.registry import create_detector, create_pose_estimator
    from posekit.pipeline.boxes import load_boxes
    from posekit.pipeline.predict_files import predict_files

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
        with _progress_bar("predicting", args.quiet) as progress:
            result = predict_files(
                args.inputs,
                skeleton,
                pose,
                detector,
                boxes=boxes,
                batch_size=args.batch_size,
                progress=progress,
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
    from posekit.engines.local import autolabel
    from posekit.formats.coco import write_coco
    from posekit.render import render_coco
    from posekit.skeleton import get_preset
    from posekit.store import NotFoundError, Workspace, import_images, project_to_dataset

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
        with _progress_bar("auto-labeling", args.quiet) as progress:
            report = autolabel(ws, project, AutolabelOptions(), progress=progress)
        _say(f"auto-label: {report.summary()}")
        coco, paths = project_to_dataset(ws, project, statuses=["predicted", "accepted"])
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
    from posekit.store import import_dataset, import_images

    if args.coco and args.annotations:
        raise CliError("give --coco FILE or --annotations FILE, not both")
    annotations = args.annotations
    if args.coco:
        annotations, args.format = args.coco, "coco"
    if not args.paths and not annotations:
        raise CliError("give image PATHs and/or --annotations FILE (or --coco FILE)")
    ws = _workspace(args)
    project = ws.get_project(args.project)
    dataset = ws.get_or_create_dataset(project, args.dataset)
    status = 0
    if annotations:
        report = import_dataset(
            ws, project, dataset, annotations, format=args.format, image_root=args.image_root
        )
        _say(f"{args.format.upper()} import: {report.summary()}")
        status |= _report_failures(report)
    if args.paths:
        report = import_images(ws, project, dataset, args.paths)
        _say(f"image import: {report.summary()}")
        status |= _report_failures(report)
    return status


def _report_failures(report: Any, done: int | None = None, verb: str = "skipped") -> int:
    """Print each failure; the exit status: 1 when inputs failed and none succeeded.

    Args:
        report: Anything with ``failures`` (``(name, reason)`` pairs).
        done: How many inputs succeeded (default ``report.added``).
        verb: How a failure is introduced in the output.
    """
    for path, reason in report.failures:
        _say(f"{verb} {path}: {reason}")
    if done is None:
        done = report.added
    return 1 if report.failures and done == 0 else 0


def cmd_autolabel(args: argparse.Namespace) -> int:
    from posekit.engines import get_engine

    ws = _workspace(args)
    project = ws.get_project(args.project)
    options = AutolabelOptions(
        detector=args.detector,
        pose=args.pose,
        dataset=args.dataset,
        overwrite=args.overwrite,
        batch_size=args.batch_size,
        device=args.device,
        engine=args.engine,
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
    )
    if options.dataset is not None:
        ws.get_dataset(project, options.dataset)  # an unknown name is an error, not 0 items
    autolabel = get_engine(options.engine)
    with _progress_bar("auto-labeling", args.quiet) as progress:
        report = autolabel(ws, project, options, progress=progress)
    _say(report.summary())
    return _report_failures(report, done=report.processed, verb="failed")


def cmd_export(args: argparse.Namespace) -> int:
    from posekit.store import export

    ws = _workspace(args)
    project = ws.get_project(args.project)
    # No --status: the format's default statuses (the one export policy, in the library).
    report = export(
        ws, project, args.output, format=args.format, dataset=args.dataset, statuses=args.status
    )
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
