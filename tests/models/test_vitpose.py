"""ViTPose / ViTPose++ backend on tiny random models saved like real checkpoints."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the [transformers] extra (torch)")
transformers = pytest.importorskip(
    "transformers", reason="needs the [transformers] extra (transformers)"
)

from posekit.core import Detections  # noqa: E402
from posekit.media.image import load_image  # noqa: E402
from posekit.models import ModelError, create_pose_estimator, heatmap_codec  # noqa: E402
from posekit.skeleton import Skeleton, get_preset  # noqa: E402

from .tiny_checkpoints import save_tiny_vitpose  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "coco-val2017-sample"
COCO = get_preset("coco17")


@pytest.fixture(scope="module")
def tiny_vitpose(tmp_path_factory):
    return save_tiny_vitpose(tmp_path_factory.mktemp("vitpose-tiny"))


@pytest.fixture(scope="module")
def tiny_vitpose_plus(tmp_path_factory):
    return save_tiny_vitpose(tmp_path_factory.mktemp("vitpose-plus-tiny"), num_experts=6)


@pytest.fixture(scope="module")
def coco_sample():
    if not (DATA / "person_keypoints.json").is_file():
        pytest.skip(f"shared sample data not found at {DATA}")
    keypoints = json.loads((DATA / "person_keypoints.json").read_text())
    detections = json.loads((DATA / "person_detections.json").read_text())
    samples = []
    for info in keypoints["images"]:
        path = DATA / "images" / info["file_name"]
        if not path.is_file():
            continue
        boxes = np.array(
            [d["bbox"] for d in detections if d["image_id"] == info["id"] and d["score"] > 0.3],
            dtype=np.float64,
        ).reshape(-1, 4)[:6]
        xyxy = boxes.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        samples.append((load_image(path), boxes, xyxy))
    if not samples:
        pytest.skip(f"no sample images under {DATA / 'images'}")
    return samples


def test_keypoints_equal_transformers_reference_pipeline(tiny_vitpose, coco_sample):
    """Without flip test, posekit's crops + decoding reproduce transformers'
    VitPoseImageProcessor (preprocess and post_process_pose_estimation)."""
    estimator = create_pose_estimator(
        f"vitpose:{tiny_vitpose}",
        flip_test=False,
        device="cpu",
        # transformers' DARK: blur sigma 0.8, its mixed derivative, unchecked steps.
        dark_sigma=heatmap_codec.TRANSFORMERS_DARK_SIGMA,
        dark_reference=True,
    )
    model = transformers.VitPoseForPoseEstimation.from_pretrained(tiny_vitpose).eval()
    processor = transformers.VitPoseImageProcessor.from_pretrained(tiny_vitpose)
    images = [s[0] for s in coco_sample]
    coco_boxes = [s[1].tolist() for s in coco_sample]
    ours = estimator.estimate(
        images, [Detections(s[2], np.ones(len(s[2]))) for s in coco_sample], COCO
    )
    inputs = processor(images=images, boxes=coco_boxes, return_tensors="pt")
    with torch.no_grad():
        heatmaps = model(**inputs)
    reference = processor.post_process_pose_estimation(heatmaps, boxes=coco_boxes)
    compared = 0
    for our_image, ref_image in zip(ours, reference):
        assert len(our_image) == len(ref_image)
        for inst, ref in zip(our_image, ref_image):
            np.testing.assert_allclose(inst.keypoints, ref["keypoints"].numpy(), atol=0.5)
            np.testing.assert_allclose(
                inst.keypoint_scores, ref["scores"].numpy().clip(0, 1), atol=1e-2
            )
            compared += 1
    assert compared >= 5
    estimator.close()


def test_flipped_image_gives_mirrored_keypoints_with_sides_swapped(tiny_vitpose, coco_sample):
    image = coco_sample[0][0]
    height, width = image.shape[:2]
    # Boxes whose padded crops stay inside the image: black padding gives exactly flat
    # heatmap regions, whose argmax ties would resolve differently when mirrored.
    boxes = np.array(
        [[0.30, 0.25, 0.45, 0.70], [0.55, 0.30, 0.65, 0.60], [0.20, 0.40, 0.40, 0.55]]
    ) * [width, height, width, height]
    estimator = create_pose_estimator(f"vitpose:{tiny_vitpose}", flip_test=True, device="cpu")
    mirrored = boxes.copy()
    mirrored[:, 0], mirrored[:, 2] = width - 1 - boxes[:, 2], width - 1 - boxes[:, 0]
    scores = np.linspace(1.0, 0.5, len(boxes))
    (plain, flipped) = estimator.estimate(
        [image, np.ascontiguousarray(image[:, ::-1])],
        [Detections(boxes, scores), Detections(mirrored, scores)],
        COCO,
    )
    for a, b in zip(plain, flipped):
        unflipped = b.keypoints[COCO.flip_index].copy()
        unflipped[:, 0] = width - 1 - unflipped[:, 0]
        np.testing.assert_allclose(unflipped, a.keypoints, atol=0.05)
        np.testing.assert_allclose(b.keypoint_scores[COCO.flip_index], a.keypoint_scores, atol=1e-4)
        assert a.score == pytest.approx(b.score, abs=1e-4)
    # The flip test changes the prediction (it averages in the mirrored pass).
    estimator.flip_test = False
    single = estimator.estimate([image], [Detections(boxes, scores)], COCO)[0]
    assert any(not np.allclose(s.keypoint_scores, p.keypoint_scores) for s, p in zip(single, plain))


def test_instances_follow_the_protocol_and_map_by_name(tiny_vitpose, coco_sample):
    image, _, boxes = coco_sample[0]
    estimator = create_pose_estimator(f"vitpose:{tiny_vitpose}", device="cpu", flip_test=False)
    assert estimator.keypoint_names == COCO.keypoints  # L_Eye -> left_eye, ...
    dets = Detections(boxes, np.full(len(boxes), 0.9))
    (coco_result,) = estimator.estimate([image], [dets], COCO)
    assert len(coco_result) == len(boxes)
    for inst, box in zip(coco_result, boxes):
        assert inst.source == "model:vitpose" and inst.status == "predicted"
        assert inst.keypoints.shape == (17, 2) and np.all(inst.visibility > 0)
        np.testing.assert_allclose(inst.box, box, rtol=1e-6)
        assert 0.0 <= inst.score <= 0.9
    # Another template: shared names get the same points, the rest is not labeled.
    mediapipe = get_preset("mediapipe33")
    (mp_result,) = estimator.estimate([image], [dets], mediapipe)
    for name in ("nose", "left_wrist", "right_ankle"):
        np.testing.assert_allclose(
            mp_result[0].keypoints[mediapipe.index(name)],
            coco_result[0].keypoints[COCO.index(name)],
        )
    missing = [i for i, n in enumerate(mediapipe.keypoints) if n not in COCO.keypoints]
    assert missing and np.all(mp_result[0].visibility[missing] == 0)
    # Images without boxes give empty lists; batches keep image order.
    empty = Detections(np.zeros((0, 4)), np.zeros(0))
    out = estimator.estimate([image, image], [empty, dets], COCO)
    assert out[0] == [] and len(out[1]) == len(boxes)
    estimator.close()
    with pytest.raises(ModelError, match="closed"):
        estimator.estimate([image], [dets], COCO)


def test_vitpose_plus_expert_from_template_and_override(tiny_vitpose_plus, coco_sample):
    image, _, boxes = coco_sample[0]
    dets = [Detections(boxes[:2], np.ones(2))]
    auto = create_pose_estimator(f"vitpose:{tiny_vitpose_plus}", device="cpu", flip_test=False)
    assert auto.num_experts == 6
    assert auto.dataset_index_for(COCO) == 0
    ap10k = Skeleton.from_dict({**COCO.to_dict(), "name": "ap10k17"})
    assert auto.dataset_index_for(ap10k) == 3
    coco_points = auto.estimate([image], dets, COCO)[0][0].keypoints
    expert3_points = auto.estimate([image], dets, ap10k)[0][0].keypoints
    forced = create_pose_estimator(
        f"vitpose:{tiny_vitpose_plus}", device="cpu", flip_test=False, dataset_index=3
    )
    assert forced.dataset_index_for(COCO) == 3
    np.testing.assert_allclose(forced.estimate([image], dets, COCO)[0][0].keypoints, expert3_points)
    assert not np.allclose(coco_points, expert3_points)  # the experts really differ


def test_out_of_range_dataset_index_is_rejected(tiny_vitpose_plus, tiny_vitpose, tmp_path):
    with pytest.raises(ModelError, match=r"dataset_index 6 is out of range.*6 experts"):
        create_pose_estimator(f"vitpose:{tiny_vitpose_plus}", device="cpu", dataset_index=6)
    with pytest.raises(ModelError, match="single-expert"):
        create_pose_estimator(f"vitpose:{tiny_vitpose}", device="cpu", dataset_index=2)
    two_experts = save_tiny_vitpose(tmp_path / "two", num_experts=2)
    estimator = create_pose_estimator(f"vitpose:{two_experts}", device="cpu")
    wholebody = Skeleton.from_dict({**COCO.to_dict(), "name": "coco_wholebody133"})
    with pytest.raises(ModelError, match=r"template 'coco_wholebody133'.*2 experts"):
        estimator.dataset_index_for(wholebody)


def test_generic_labels_use_the_dataset_layout_or_fail(tmp_path, caplog):
    generic = save_tiny_vitpose(tmp_path / "generic", labels=[f"LABEL_{i}" for i in range(17)])
    with caplog.at_level(logging.INFO, logger="posekit.models.vitpose"):
        estimator = create_pose_estimator(f"vitpose:{generic}", device="cpu")
    assert estimator.keypoint_names == COCO.keypoints
    assert "generic keypoint labels" in caplog.text
    odd = save_tiny_vitpose(tmp_path / "odd", labels=[f"LABEL_{i}" for i in range(15)])
    with pytest.raises(ModelError, match="15 keypoints"):
        create_pose_estimator(f"vitpose:{odd}", device="cpu")
    named = create_pose_estimator(
        f"vitpose:{odd}", device="cpu", keypoint_names=[f"p{i}" for i in range(15)]
    )
    with pytest.raises(ModelError, match="share no names"):
        named.estimate([np.zeros((8, 8, 3), np.uint8)], [Detections(np.zeros((0, 4)), [])], COCO)


def test_offline_hub_id_fails_fast_with_instructions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        create_pose_estimator("vitpose:posekit-tests/not-a-cached-model", device="cpu")
    message = str(info.value)
    assert "not in the local Hugging Face cache" in message
    assert "hf download posekit-tests/not-a-cached-model" in message
    assert "vitpose:/path/to/folder" in message


def test_bad_sources_are_named(tmp_path, tiny_vitpose):
    with pytest.raises(ModelError, match="does not exist"):
        create_pose_estimator(f"vitpose:{tmp_path / 'nope' / 'model'}")
    with pytest.raises(ModelError, match="needs a checkpoint"):
        create_pose_estimator("vitpose")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError):
        create_pose_estimator(f"vitpose:{tmp_path}", device="cpu")
    with pytest.raises(ModelError, match="half precision"):
        create_pose_estimator(f"vitpose:{tiny_vitpose}", device="cpu", half=True)


def test_backend_modules_do_not_import_torch():
    code = (
        "import sys, posekit.models.blazepose, posekit.models.rtdetr, posekit.models.vitpose;"
        "import posekit.models.ultralytics_yolo, posekit.models.torch_kit;"
        "import posekit.models.catalog as c; c.list_backends();"
        "print([x for x in ('torch', 'transformers', 'ultralytics') if x in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
