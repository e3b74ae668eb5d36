"""RT-DETR person detector on a tiny random checkpoint saved like a real one."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the [transformers] extra (torch)")
transformers = pytest.importorskip(
    "transformers", reason="needs the [transformers] extra (transformers)"
)

from posekit.core import Detections  # noqa: E402
from posekit.media.image import load_image  # noqa: E402
from posekit.models import ModelError, create_detector  # noqa: E402
from posekit.models.boxes import filter_person_boxes, nms  # noqa: E402

from .tiny_checkpoints import save_tiny_rtdetr  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "coco-val2017-sample"


@pytest.fixture(scope="module")
def tiny_rtdetr(tmp_path_factory):
    return save_tiny_rtdetr(tmp_path_factory.mktemp("rtdetr"), {0: "car", 1: "person", 2: "dog"})


@pytest.fixture(scope="module")
def sample_image():
    path = DATA / "images" / "000000000785.jpg"
    if not path.is_file():
        pytest.skip(f"shared sample image not found at {path}")
    return load_image(path)


def test_person_boxes_match_transformers_post_processing(tiny_rtdetr, sample_image):
    import cv2

    # At the model's input size resizing is the identity in both pipelines.
    image = cv2.resize(sample_image, (128, 128), interpolation=cv2.INTER_AREA)
    detector = create_detector(
        f"rtdetr:{tiny_rtdetr}",
        device="cpu",
        score_threshold=0.5,
        iou_threshold=1.0,
        min_box_size=0,
    )
    assert detector.person_class == 1 and detector.input_size == (128, 128)
    (ours,) = detector.detect([image])
    model = transformers.RTDetrForObjectDetection.from_pretrained(tiny_rtdetr).eval()
    processor = transformers.RTDetrImageProcessor.from_pretrained(tiny_rtdetr)
    with torch.no_grad():
        outputs = model(**processor(images=[image], return_tensors="pt"))
    (ref,) = processor.post_process_object_detection(
        outputs, threshold=0.5, target_sizes=[(128, 128)]
    )
    person = ref["labels"].numpy() == 1
    ref_boxes = ref["boxes"].numpy()[person]
    ref_scores = ref["scores"].numpy()[person]
    assert 0 < len(ours) == len(ref_boxes)
    order = np.argsort(-ref_scores, kind="stable")
    np.testing.assert_allclose(ours.scores, ref_scores[order], atol=1e-5)
    np.testing.assert_allclose(ours.boxes, np.clip(ref_boxes[order], 0, 128), atol=1e-3)


def test_detections_follow_the_protocol(tiny_rtdetr, sample_image):
    detector = create_detector(f"rtdetr:{tiny_rtdetr}", device="cpu", score_threshold=0.3)
    height, width = sample_image.shape[:2]
    results = detector.detect([sample_image, sample_image[:200, :300].copy()])
    assert len(results) == 2 and all(isinstance(r, Detections) for r in results)
    for dets, (h, w) in zip(results, [(height, width), (200, 300)]):
        assert dets.boxes.dtype == np.float32 and dets.boxes.shape == (len(dets), 4)
        assert np.all(dets.scores >= 0.3) and np.all(np.diff(dets.scores) <= 0)
        assert np.all(dets.boxes[:, 2] - dets.boxes[:, 0] >= 4)
        assert np.all(dets.boxes[:, 3] - dets.boxes[:, 1] >= 4)
        assert np.all((dets.boxes[:, [0, 2]] >= 0) & (dets.boxes[:, [0, 2]] <= w))
        assert np.all((dets.boxes[:, [1, 3]] >= 0) & (dets.boxes[:, [1, 3]] <= h))
    assert len(results[0]) > 0
    detector.close()
    with pytest.raises(ModelError, match="closed"):
        detector.detect([sample_image])


def test_checkpoint_without_person_class_is_rejected(tmp_path):
    folder = save_tiny_rtdetr(tmp_path / "vehicles", {0: "car", 1: "truck"})
    with pytest.raises(ModelError, match="no 'person' class"):
        create_detector(f"rtdetr:{folder}", device="cpu")


def test_offline_hub_id_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        create_detector("rtdetr:posekit-tests/not-a-cached-detector", device="cpu")


def test_nms_and_filters():
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 2, 30], [40, 40, 48, 48]],
        dtype=np.float64,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.95, 0.2])
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2, 4]
    dets = filter_person_boxes(
        boxes, scores, score_threshold=0.5, iou_threshold=0.5, min_box_size=4, width=25, height=25
    )
    # [0,0,2,30] is too narrow, box 1 duplicates box 0, box 4 scores low; box 2 is clipped.
    np.testing.assert_allclose(dets.boxes, [[0, 0, 10, 10], [20, 20, 25, 25]])
    np.testing.assert_allclose(dets.scores, [0.9, 0.7])
