"""The command line as a new user meets it (issue 8): exit codes, messages that name
flags, checks before any model runs, score thresholds, ground truth kept."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posekit import Instance, get_preset
from posekit.cli import main
from posekit.store import Workspace

NAMES = list(get_preset("coco17").keypoints)


def _photos(folder: Path, count: int = 2) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", (64, 48), (60 * index, 90, 160)).save(folder / f"img{index}.png")
    return [f"img{index}.png" for index in range(count)]


def _coco(names: list[str]) -> dict:
    keypoints = [v for k in range(17) for v in (10 + k, 5 + k, 2)]
    return {
        "images": [
            {"id": i + 1, "file_name": n, "width": 64, "height": 48} for i, n in enumerate(names)
        ],
        "annotations": [
            {
                "id": i + 1,
                "image_id": i + 1,
                "category_id": 1,
                "keypoints": keypoints,
                "num_keypoints": 17,
                "bbox": [1, 2, 30, 40],
            }
            for i in range(len(names))
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": NAMES}],
    }


@pytest.fixture
def no_models(monkeypatch):
    """Fail the test if a command loads a model."""
    import posekit.models.registry as registry

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(registry, "create_pose_estimator", refuse)
    monkeypatch.setattr(registry, "create_detector", refuse)


def test_readme_tour_keeps_the_ground_truth(tmp_path: Path, capsys) -> None:
    photos = tmp_path / "photos"
    names = _photos(photos)
    labels = tmp_path / "person_keypoints.json"
    labels.write_text(json.dumps(_coco(names)))
    ws = ["--workspace", str(tmp_path / "ws")]
    assert main([*ws, "init", "sports"]) == 0
    assert main([*ws, "import", "sports", str(photos)]) == 0
    capsys.readouterr()
    code = main([*ws, "import", "sports", "--coco", str(labels), "--image-root", str(photos)])
    err = capsys.readouterr().err
    assert code == 0 and "attached to 2 images" in err, err
    workspace = Workspace(tmp_path / "ws")
    try:
        items = workspace.list_items("sports")
        assert [len(workspace.get_instances(i)) for i in items] == [1, 1]
    finally:
        workspace.close()


def test_missing_images_message_names_the_flags(tmp_path: Path, capsys) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(_coco(["nowhere.png"])))
    ws = ["--workspace", str(tmp_path / "ws")]
    main([*ws, "init", "p"])
    assert main([*ws, "import", "p", "--coco", str(labels)]) == 2
    err = capsys.readouterr().err
    assert "--image-root" in err and "--missing-media register" in err
    assert "missing_media=" not in err and "image_root=" not in err
    assert main([*ws, "import", "p", "--coco", str(labels), "--missing-media", "register"]) == 0


def test_import_of_nothing_importable_exits_non_zero(tmp_path: Path, capsys) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    ws = ["--workspace", str(tmp_path / "ws")]
    main([*ws, "init", "p"])
    assert main([*ws, "import", "p", str(notes)]) == 1
    err = capsys.readouterr().err
    assert "notes.txt" in err and "neither an image" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*ws, "import", "p", str(empty)]) == 1
    assert ".jpg" in capsys.readouterr().err


def test_predict_checks_the_output_folder_first(tmp_path: Path, capsys, no_models) -> None:
    photos = tmp_path / "photos"
    _photos(photos, 1)
    out = tmp_path / "no" / "such" / "dir" / "p.json"
    assert main(["-q", "predict", str(photos), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "-o/--output" in err and "does not exist" in err and ".tmp" not in err
    assert not out.parent.exists()


def test_predict_on_a_folder_without_images_loads_nothing(
    tmp_path: Path, capsys, no_models
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["-q", "predict", str(empty), "-o", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert "no image files" in err and ".jpg" in err and ".png" in err
    assert not (tmp_path / "p.json").exists()


def test_eval_on_a_binary_file_names_it_and_its_argument(tmp_path: Path, capsys) -> None:
    binary = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(binary, format="JPEG")
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(_coco(["a.png"])))
    assert main(["eval", str(binary), str(gt)]) == 2
    err = capsys.readouterr().err
    assert "GT.json" in err and str(binary) in err and "codec" not in err
    assert main(["eval", str(gt), str(binary)]) == 2
    assert "PRED.json" in capsys.readouterr().err


def test_serve_on_a_busy_port_says_so_and_suggests_another(tmp_path: Path, capsys) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["serve", "--workspace", str(tmp_path / "ws"), "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2 and "--port" in err and "http://" not in err


def _workspace_with_scores(root: Path) -> None:
    photos = root / "photos"
    _photos(photos, 2)
    ws = Workspace(root / "ws")
    project = ws.create_project("p", get_preset("coco17"))
    from posekit.store import import_images

    import_images(ws, project, "default", [photos])
    items = ws.list_items(project)
    xy = np.full((17, 2), 20, np.float32)
    vis = np.full(17, 2, np.uint8)

    def prediction(score: float) -> Instance:
        return Instance(xy, vis, score=score, keypoint_scores=np.full(17, score, np.float32),
                        status="predicted", source="model:test")  # fmt: skip

    ws.write_predictions(
        {items[0].id: [prediction(0.9), prediction(0.02)], items[1].id: [prediction(0.03)]},
        overwrite=False,
    )
    ws.close()


def test_export_min_score_leaves_junk_out(tmp_path: Path, capsys) -> None:
    _workspace_with_scores(tmp_path)
    ws = ["--workspace", str(tmp_path / "ws")]
    out = tmp_path / "pred.json"
    args = [*ws, "export", "p", "--format", "coco", "-o", str(out), "--status", "predicted"]
    assert main([*args, "--min-score", "0.5"]) == 0
    data = json.loads(out.read_text())
    assert [a["score"] for a in data["annotations"]] == [0.9]
    # The image whose only prediction was junk is not written as an image with nobody.
    assert len(data["images"]) == 1
    with pytest.raises(SystemExit) as exit_info:  # a score is in [0, 1]
        main([*args, "--min-score", "1.5"])
    assert exit_info.value.code == 2


_FILE_FORMATS = [
    ("coco", "p.json"),
    ("csv-tracks", "p.csv"),
    ("cvat", "p.xml"),
    ("labelstudio", "p.json"),
]


@pytest.mark.parametrize(("fmt", "name"), _FILE_FORMATS)
def test_export_into_a_missing_folder_names_the_folder(
    tmp_path: Path, capsys, fmt: str, name: str
) -> None:
    """Not the hidden temporary file the atomic write would have made there."""
    _workspace_with_scores(tmp_path)
    missing = tmp_path / "no" / "such"
    args = ["--workspace", str(tmp_path / "ws"), "export", "p", "--format", fmt]
    assert main([*args, "-o", str(missing / name), "--status", "predicted"]) == 2
    err = capsys.readouterr().err
    assert f"output folder does not exist: '{missing}'" in err
    assert ".tmp" not in err
    assert not (tmp_path / "no").exists()


def test_render_and_predict_have_min_score(tmp_path: Path) -> None:
    from posekit.cli.parser import build_parser

    parser = build_parser()
    for argv in (
        ["predict", "x", "-o", "y.json", "--min-score", "0.3"],
        ["render", "x.json", "--image-root", "i", "-o", "o", "--min-score", "0.3"],
        ["autolabel", "p", "--min-score", "0.3", "--existing", "beside"],
        ["export", "p", "--format", "coco", "-o", "o.json", "--min-score", "0.3"],
    ):
        assert parser.parse_args(argv).min_score == 0.3


def test_tflite_runtime_does_not_print_its_delegate_line(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="needs the [mediapipe] extra")
    code = (
        "from posekit.models.blazepose.runtime import find_model_dir, load_interpreter\n"
        "det, lmk = find_model_dir()\n"
        "load_interpreter(det, 1).invoke(); load_interpreter(lmk, 1)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "XNNPACK" not in result.stderr and "XNNPACK" not in result.stdout


def test_template_with_an_unknown_key_is_refused_naming_it(tmp_path: Path, capsys) -> None:
    import yaml

    data = get_preset("coco17").to_dict()
    data["colour"] = "red"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["templates", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'colour'" in err and "keypoint_colors" in err


def test_edges_are_counted_from_one(tmp_path: Path) -> None:
    from posekit.skeleton import Skeleton, SkeletonError

    data = get_preset("coco17").to_dict()
    data["edges"] = [["nose", "nope"]] + data["edges"]
    with pytest.raises(SkeletonError, match="edge #1 "):
        Skeleton.from_dict(data)


def test_library_messages_name_cli_flags(tmp_path: Path, capsys, no_models) -> None:
    photos = tmp_path / "photos"
    _photos(photos, 1)
    results = tmp_path / "dets.json"
    results.write_text(json.dumps([{"image_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9}]))
    code = main(["-q", "predict", str(photos), "-o", str(tmp_path / "p.json"), "--boxes",
                 str(results)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--images-from" in err and "images_from=" not in err
