"""End-to-end tests of the ``posekit`` command line on the real samples."""

import json
from pathlib import Path

import pytest

from posekit.cli import main


@pytest.fixture
def coco_sample(shared_data: Path) -> Path:
    return shared_data / "coco-val2017-sample"


def test_predict_eval_render_on_coco_sample(coco_sample, tmp_path, capsys):
    pytest.importorskip("ai_edge_litert", reason="needs the [mediapipe] extra")
    pred = tmp_path / "pred.json"
    rendered = tmp_path / "rendered"
    assert (
        main(
            [
                "-q",
                "predict",
                str(coco_sample / "images"),
                "-o",
                str(pred),
                "--render",
                str(rendered),
            ]
        )
        == 0
    )
    data = json.loads(pred.read_text())
    names = {img["file_name"] for img in data["images"]}
    assert names == {p.name for p in (coco_sample / "images").glob("*.jpg")}
    assert data["categories"][0]["keypoints"][0] == "nose"
    assert len(data["annotations"]) >= 8  # the sample has 12 people with keypoints
    for ann in data["annotations"]:
        assert len(ann["keypoints"]) == 51 and 0 < ann["score"] <= 1
        assert set(ann["keypoints"][2::3]) <= {0, 1, 2}
    assert sorted(p.name for p in rendered.glob("*.jpg")) == sorted(names)

    capsys.readouterr()
    assert main(["eval", str(coco_sample / "person_keypoints.json"), str(pred), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    for key in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"):
        assert 0.0 <= scores[key] <= 1.0
    # A working multi-person pipeline is far above chance on these images.
    assert scores["AP50"] > 0.5
    assert len(scores["per_keypoint"]) == 17


def test_predict_with_ground_truth_boxes(coco_sample, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="needs the [mediapipe] extra")
    pred = tmp_path / "pred.json"
    gt = coco_sample / "person_keypoints.json"
    assert (
        main(["-q", "predict", str(coco_sample / "images"), "-o", str(pred), "--boxes", str(gt)])
        == 0
    )
    data = json.loads(pred.read_text())
    gt_data = json.loads(gt.read_text())
    assert len(data["annotations"]) == len(gt_data["annotations"])


def test_predict_with_results_list_needs_images_from(coco_sample, tmp_path, capsys):
    dets = coco_sample / "person_detections.json"
    code = main(
        [
            "-q",
            "predict",
            str(coco_sample / "images"),
            "-o",
            str(tmp_path / "p.json"),
            "--boxes",
            str(dets),
        ]
    )
    assert code == 2
    assert "images-from" in capsys.readouterr().err.replace("_", "-")
    assert not (tmp_path / "p.json").exists()


def test_templates_commands(tmp_path, capsys):
    assert main(["templates", "list"]) == 0
    out = capsys.readouterr().out
    assert "coco17" in out and "mediapipe33" in out
    assert main(["templates", "show", "coco17"]) == 0
    assert "left_wrist" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nkeypoints: [a, b]\nsigmas: [0.1, 0.1]\nedges: [[a, c]]\n")
    assert main(["templates", "validate", str(bad)]) == 2
    assert "unknown keypoint 'c'" in capsys.readouterr().err


def test_project_workflow(coco_sample, tmp_path, capsys):
    ws = tmp_path / "ws"
    common = ["-q", "--workspace", str(ws)]
    assert main([*common, "init", "demo", "--template", "coco17"]) == 0
    assert main([*common, "init", "demo"]) == 2  # duplicate project name
    assert (
        main(
            [
                *common,
                "import",
                "demo",
                "--coco",
                str(coco_sample / "person_keypoints.json"),
                "--image-root",
                str(coco_sample / "images"),
            ]
        )
        == 0
    )
    out = tmp_path / "export.json"
    assert main([*common, "export", "demo", "--format", "coco", "-o", str(out)]) == 0
    exported = json.loads(out.read_text())
    original = json.loads((coco_sample / "person_keypoints.json").read_text())
    assert len(exported["annotations"]) == len(original["annotations"])
    by_id = {a["id"]: a for a in exported["annotations"]}
    for ann in original["annotations"]:
        assert by_id[ann["id"]]["keypoints"] == ann["keypoints"]
    yolo = tmp_path / "yolo"
    assert main([*common, "export", "demo", "--format", "yolo", "-o", str(yolo)]) == 0
    assert "kpt_shape" in (yolo / "data.yaml").read_text()


def test_predict_reports_unreadable_inputs_and_writes_nothing_without_images(
    coco_sample, tmp_path, capsys
):
    pytest.importorskip("ai_edge_litert", reason="needs the [mediapipe] extra")
    folder = tmp_path / "in"
    folder.mkdir()
    jpeg = (coco_sample / "images" / "000000000785.jpg").read_bytes()
    (folder / "good.jpg").write_bytes(jpeg)
    (folder / "broken.jpg").write_bytes(jpeg[:5000])
    pred = tmp_path / "pred.json"
    assert main(["-q", "predict", str(folder), "-o", str(pred)]) == 0
    err = capsys.readouterr().err
    assert err.count("broken.jpg") == 1 and "truncated" in err
    assert [i["file_name"] for i in json.loads(pred.read_text())["images"]] == ["good.jpg"]

    (folder / "good.jpg").unlink()
    empty = tmp_path / "empty.json"
    assert main(["-q", "predict", str(folder), "-o", str(empty)]) == 2
    assert "no readable images" in capsys.readouterr().err
    assert not empty.exists()


# ------------------------------------------------------------------ exit codes
def test_report_failures_is_nonzero_only_when_nothing_succeeded(capsys):
    from types import SimpleNamespace

    from posekit.cli.commands import _report_failures

    failed = [("a.jpg", "truncated")]
    assert _report_failures(SimpleNamespace(failures=failed, added=0)) == 1
    assert _report_failures(SimpleNamespace(failures=failed, added=3)) == 0
    assert _report_failures(SimpleNamespace(failures=[], added=0)) == 0
    assert _report_failures(SimpleNamespace(failures=failed), done=0, verb="failed") == 1
    err = capsys.readouterr().err
    assert "skipped a.jpg: truncated" in err and "failed a.jpg: truncated" in err


def test_import_where_every_image_fails_exits_nonzero(coco_sample, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    jpeg = (coco_sample / "images" / "000000000785.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(jpeg[:5000])
    common = ["-q", "--workspace", str(tmp_path / "ws")]
    assert main([*common, "init", "demo"]) == 0
    assert main([*common, "import", "demo", str(folder)]) == 1
    assert "broken.jpg" in capsys.readouterr().err
    (folder / "good.jpg").write_bytes(jpeg)
    assert main([*common, "import", "demo", str(folder)]) == 0  # partly imported: success


@pytest.fixture
def fake_models(monkeypatch):
    """Registers the test backends as ``--detector fake --pose fake``."""
    from fakes import BrightnessDetector, GridPose
    from posekit.models import registry

    monkeypatch.setitem(registry.DETECTORS, "fake", lambda arg, **o: BrightnessDetector())
    monkeypatch.setitem(registry.POSE_ESTIMATORS, "fake", lambda arg, **o: GridPose())


def test_autolabel_exit_code_and_export_status_policy(coco_sample, tmp_path, capsys, fake_models):
    ws_dir = tmp_path / "ws"
    common = ["-q", "--workspace", str(ws_dir)]
    assert main([*common, "init", "demo"]) == 0
    assert main([*common, "import", "demo", str(coco_sample / "images")]) == 0
    fake = ["--detector", "fake", "--pose", "fake"]
    assert main([*common, "autolabel", "demo", *fake, "--batch-size", "2"]) == 0
    assert "4 items labeled" in capsys.readouterr().err

    # Unreviewed predictions are exported only when asked for (the format's default).
    default = tmp_path / "default.json"
    assert main([*common, "export", "demo", "--format", "coco", "-o", str(default)]) == 0
    assert json.loads(default.read_text())["annotations"] == []
    asked = tmp_path / "asked.json"
    export = [*common, "export", "demo", "--format", "coco", "-o", str(asked)]
    assert main([*export, "--status", "predicted"]) == 0
    assert len(json.loads(asked.read_text())["annotations"]) > 0

    # Every item fails: the command says so and exits non-zero.
    from posekit.store import Workspace

    with Workspace(ws_dir) as ws:
        for item in ws.list_items("demo"):
            item.path.write_bytes(item.path.read_bytes()[:200])
    capsys.readouterr()
    assert main([*common, "autolabel", "demo", *fake, "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "0 items labeled" in err and err.count("\nfailed ") == 4


def test_autolabel_of_an_unknown_dataset_is_an_error(tmp_path, capsys, fake_models):
    common = ["-q", "--workspace", str(tmp_path / "ws")]
    assert main([*common, "init", "demo"]) == 0
    assert main([*common, "autolabel", "demo", "--dataset", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_format_choices_come_from_the_format_table(capsys):
    from posekit.formats.registry import readable_formats, writable_formats

    for command, names in (("export", writable_formats()), ("import", readable_formats())):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "{" + ",".join(names) + "}" in out.replace(" ", "").replace("\n", "")


def test_import_prints_base_name_matches_and_skips(coco_sample, tmp_path, capsys):
    """The annotations name the images ``images/train/<name>``; the project holds them
    as ``<name>``: the command says which file entry went to which image, and, on a
    second import, why each was skipped."""
    data = json.loads((coco_sample / "person_keypoints.json").read_text())
    for image in data["images"]:
        image["file_name"] = f"images/train/{image['file_name']}"
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(data))
    common = ["--workspace", str(tmp_path / "ws")]
    assert main([*common, "-q", "init", "demo", "--template", "coco17"]) == 0
    assert main([*common, "-q", "import", "demo", str(coco_sample / "images")]) == 0
    capsys.readouterr()
    importing = [*common, "import", "demo", "--coco", str(labels), "--image-root", str(tmp_path)]
    assert main(importing) == 0
    captured = capsys.readouterr()
    said = captured.out + captured.err
    names = sorted(p.name for p in (coco_sample / "images").glob("*.jpg"))
    for name in names:
        assert f"matched images/train/{name} -> {name} (same base name)" in said
    assert "4 matched by base name" in said
    assert main(importing) == 0  # nothing new: the entries are skipped, with the reason
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert (
        f"skipped images/train/{names[0]}: '{names[0]}' (same base name) is already in the "
        "dataset with annotations"
    ) in said
    assert "... and" not in said  # 4 matches + 4 skips: under the 10 lines shown


def test_matching_lines_are_cut_after_the_limit(capsys):
    from types import SimpleNamespace

    from posekit.cli.commands import _report_matching

    report = SimpleNamespace(
        matched=[(f"a/{i}.jpg", f"{i}.jpg") for i in range(4)],
        skipped=[("b/x.jpg", "two images are named 'x.jpg': 'p/x.jpg', 'q/x.jpg'")],
    )
    _report_matching(report, limit=3)
    captured = capsys.readouterr()
    said = (captured.out + captured.err).splitlines()
    assert said == [
        "matched a/0.jpg -> 0.jpg (same base name)",
        "matched a/1.jpg -> 1.jpg (same base name)",
        "matched a/2.jpg -> 2.jpg (same base name)",
        "... and 2 more",
    ]
