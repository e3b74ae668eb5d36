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

from posekit.cli.user_commands import cmd_users
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
def _workspace(args: argparse.Namespace, path: Any = None):
    """The workspace of ``--workspace`` (or ``path``) on the database of ``--database-url``."""
    from posekit.store import Workspace
    from posekit.store.database import DatabaseUnavailableError

    try:
        return Workspace(
            path if path is not None else args.workspace,
            database_url=getattr(args, "database_url", None),
        )
    except DatabaseUnavailableError as exc:
        raise CliError(_database_url_problem(exc)) from None


def _database_url_problem(exc: Exception) -> str:
    return f"{exc} (the database is set by --database-url or $POSEKIT_DATABASE_URL)"


def _template(spec: str | None):
    from posekit.skeleton import load_template

    return load_template(spec or "coco17")


def cmd_predict(args: argparse.Namespace) -> int:
    from posekit.cli.video_commands import predict_videos, video_inputs
    from posekit.formats.coco import write_coco
    from posekit.models.registry import create_detector, create_pose_estimator
    from posekit.pipeline.boxes import load_boxes
    from posekit.pipeline.predict_files import predict_files

    videos = video_inputs(args.inputs, args.frames_folder)
    if videos:
        return predict_videos(args, videos)
    if not args.inputs:
        raise CliError("give image or video INPUTs (or --frames-folder DIR --fps N)")
    if args.render and Path(args.render).suffix.lower() in (".mp4", ".mkv", ".mov", ".webm"):
        raise CliError(f"--render {args.render}: a video file needs a video INPUT")
    _check_output_file(args.output, "-o/--output")
    _check_images_exist(args.inputs)
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
                options=AutolabelOptions(
                    batch_size=args.batch_size,
                    min_instance_score=args.min_score,
                    oks_nms_threshold=args.oks_nms,
                ),
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
    _drop_below(result.dataset, args.min_score)
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


def _check_output_file(output: str, flag: str) -> None:
    """Refuse an output file that cannot be written, before any model runs."""
    folder = Path(output).absolute().parent
    if not folder.is_dir():
        raise CliError(f"{flag} {output}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CliError(f"{flag} {output}: folder {folder} is not writable")
    if Path(output).is_dir():
        raise CliError(f"{flag} {output}: is a folder; give a file name")


def _check_images_exist(inputs: list[str]) -> None:
    """Refuse inputs that hold no image at all, before any model is loaded."""
    from posekit.media import IMAGE_EXTENSIONS, find_images

    present = [p for p in inputs if Path(p).exists()]
    if not present:
        raise CliError(f"no such file or folder: {', '.join(inputs)}")
    images = [p for p in find_images(present) if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not images:
        looked = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise CliError(
            f"no image files in {', '.join(present)} (looked for {looked}; videos: "
            "give the video file itself)"
        )


def _drop_below(dataset: Any, min_score: float | None) -> None:
    """Leave out instances whose score is below ``min_score`` (None or 0: keep all)."""
    if not min_score:
        return
    for labeled in dataset.images:
        labeled.instances[:] = [
            inst for inst in labeled.instances if inst.score is None or inst.score >= min_score
        ]


def cmd_demo(args: argparse.Namespace) -> int:
    from posekit.demo import demo_images
    from posekit.engines.local import autolabel
    from posekit.formats.coco import write_coco
    from posekit.render import render_coco
    from posekit.skeleton import get_preset
    from posekit.store import NotFoundError, import_images, project_to_dataset

    out = Path(args.output)
    if not args.no_serve:
        _check_port(args.host, args.port)  # before the model run, not after it
    images = demo_images()
    ws = _workspace(args, out)
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
    return _serve(out, args.host, args.port, getattr(args, "database_url", None))


def _check_port(host: str, port: int) -> None:
    """Refuse a port another program listens on, naming the flag that changes it."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if os.name != "nt":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): is another server "
                f"running there? Pass another port, e.g. --port {port + 1}"
            ) from None


def cmd_serve(args: argparse.Namespace) -> int:
    workspace = args.workspace or os.environ.get("POSEKIT_WORKSPACE") or "posekit-data"
    return _serve(Path(workspace), args.host, args.port, getattr(args, "database_url", None))


def _serve(workspace: Path, host: str, port: int, database_url: str | None = None) -> int:
    """Run the web app on ``workspace`` (its database: ``database_url``) until interrupted."""
    try:
        import uvicorn

        from posekit.server import Settings, create_app
    except ImportError as exc:
        raise CliError(
            f"the web app needs {exc.name}, which posekit installs: reinstall posekit "
            "(pip install -e .)"
        ) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        _say(
            f"warning: listening on {host}: everyone who can reach it sees the login page; "
            "put it behind HTTPS (a TLS proxy) before passwords cross a network"
        )
    _check_port(host, port)
    from posekit.store.database import DatabaseUnavailableError

    try:
        app = create_app(
            Settings(workspace=workspace, host=host, port=port, database_url=database_url)
        )
    except DatabaseUnavailableError as exc:
        raise CliError(_database_url_problem(exc)) from None
    shown = f"[{host}]" if ":" in host else host
    if database_url:
        from posekit.store.database import shown_url

        _say(f"posekit: database {shown_url(database_url)}")
    _say(f"posekit: serving workspace {workspace} at http://{shown}:{port}/ (Ctrl-C to stop)")
    from posekit.cli.login_link import serve_login_link

    state = app.state.posekit
    link = serve_login_link(state.ws, host, port, ttl_s=state.settings.login_link_ttl_s, say=_say)
    if link:
        _say(f"Open {link}")
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from posekit.evaluation import evaluate

    if args.tracking:
        from posekit.cli.video_commands import cmd_eval_tracking

        return cmd_eval_tracking(args)

    for label, path in (("GT.json", args.ground_truth), ("PRED.json", args.predictions)):
        _check_json_file(path, label)
    skeleton = _template(args.template) if args.template else None
    try:
        result = evaluate(args.ground_truth, args.predictions, skeleton)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{args.ground_truth} (GT.json) or {args.predictions} (PRED.json) is not valid "
            f"JSON: {exc}"
        ) from None
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.format_table())
    return 0


def _check_json_file(path: str, label: str) -> None:
    """Refuse a file that is not JSON text, naming it and its argument."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise CliError(f"{label} {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        text = head.decode("utf-8-sig", errors="strict")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the 4 KB boundary
            raise CliError(f"{label} {path}: not a JSON file (binary content)") from None
        text = head[: exc.start].decode("utf-8-sig")
    if text.strip() and text.lstrip()[0] not in "[{":
        raise CliError(f"{label} {path}: not a JSON file (expected a COCO object or list)")


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
    if not args.paths and not annotations and not args.frames_folder:
        raise CliError(
            "give image or video PATHs, --frames-folder DIR --fps N, and/or --annotations FILE "
            "(or --coco FILE)"
        )
    if args.fps is not None and not args.frames_folder:
        raise CliError("--fps is the frame rate of --frames-folder; give --frames-folder DIR")
    from posekit.cli.video_commands import import_videos, video_inputs

    videos = video_inputs(args.paths, args.frames_folder)
    args.paths = [p for p in args.paths if Path(p) not in videos]
    ws = _workspace(args)
    project = ws.get_project(args.project)
    dataset = ws.get_or_create_dataset(project, args.dataset)
    status = 0
    if videos:
        status |= import_videos(ws, project, dataset, videos, args)
    if annotations:
        from posekit.store.imports import MissingMediaError

        try:
            report = import_dataset(
                ws, project, dataset, annotations, format=args.format,
                image_root=args.image_root, missing_media=args.missing_media,
            )  # fmt: skip
        except MissingMediaError as exc:
            raise CliError(
                exc.describe(
                    "give --image-root DIR to look elsewhere, or --missing-media register to "
                    "import the annotations without the images"
                )
            ) from None
        _say(f"{args.format.upper()} import: {report.summary()}")
        _report_matching(report)
        status |= _report_failures(report)
    if args.paths:
        report = import_images(ws, project, dataset, args.paths)
        _say(f"image import: {report.summary()}")
        status |= _report_failures(report)
    return status


def _report_matching(report: Any, limit: int = 10) -> None:
    """Print the images matched by base name and the skipped ones, with the reasons."""
    lines = [f"matched {name} -> {item} (same base name)" for name, item in report.matched]
    lines += [f"skipped {name}: {reason}" for name, reason in report.skipped]
    for line in lines[:limit]:
        _say(line)
    if len(lines) > limit:
        _say(f"... and {len(lines) - limit} more")


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


def _score_options(args: argparse.Namespace) -> dict[str, Any]:
    """AutolabelOptions fields set on the command line (the others keep their defaults)."""
    chosen = {
        "min_instance_score": args.min_score,
        "min_box_score": args.min_box_score,
        "oks_nms_threshold": getattr(args, "oks_nms", None),
    }
    if getattr(args, "existing", None) is not None:
        chosen["existing"] = args.existing
    return {key: value for key, value in chosen.items() if value is not None}


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
        **_score_options(args),
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

    if args.with_authors and args.format != "coco":
        raise CliError(f"--with-authors: only --format coco carries authors, not {args.format}")
    ws = _workspace(args)
    project = ws.get_project(args.project)
    # No --status: the format's default statuses (the one export policy, in the library).
    report = export(
        ws, project, args.output, format=args.format, dataset=args.dataset, statuses=args.status,
        min_score=args.min_score, images="all" if args.all_images else "labeled",
        with_authors=args.with_authors,
    )  # fmt: skip
    _say(f"exported {args.project!r} as {args.format}: {report.summary()}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from posekit.formats.coco import read_coco
    from posekit.render import render_coco

    skeleton = _template(args.template) if args.template else None
    dataset = read_coco(args.coco, skeleton)
    _drop_below(dataset, args.min_score)
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
    from posekit.models.catalog import (
        PIPELINES,
        list_backends,
        list_checkpoints,
        pipeline_licenses,
    )

    if getattr(args, "action", "list") == "fetch":
        if args.model != "blazepose":
            raise CliError("models fetch: give the model to fetch: blazepose")
        from posekit.models.blazepose.model_files import fetch_model_files

        _say(f"BlazePose model files in {fetch_model_files()}")
        return 0

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
    print("\npipelines (--detector / --pose; licence-clean: no copyleft code):")
    for pipe in PIPELINES:
        licenses, clean = pipeline_licenses(pipe)
        verdict = "licence-clean" if clean else "copyleft: " + "/".join(licenses)
        print(f"  {pipe.name:16s} --detector {pipe.detector} --pose {pipe.pose}")
        print(f"  {'':16s} {pipe.note}; {verdict}")
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
    "users": cmd_users,
}
