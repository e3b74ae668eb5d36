"""Tiny random ViTPose and RT-DETR checkpoints saved like real ones (for tests).

torch and transformers are imported by the functions, so importing this module
costs nothing where the [transformers] extra is missing.
"""

from __future__ import annotations

from pathlib import Path

# Labels as the usyd-community checkpoints spell them.
HUB_LABELS = [
    "Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear", "L_Shoulder", "R_Shoulder", "L_Elbow",
    "R_Elbow", "L_Wrist", "R_Wrist", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle",
]  # fmt: skip


def save_tiny_vitpose(folder: Path, *, num_experts: int = 1, labels=HUB_LABELS, seed: int = 0):
    import torch
    import transformers

    torch.manual_seed(seed)
    backbone = transformers.VitPoseBackboneConfig(
        image_size=[128, 96],
        patch_size=[8, 8],
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=2,
        num_experts=num_experts,
        part_features=8,
        out_indices=[2],
    )
    kwargs = {"num_labels": len(labels)}
    if labels is not None and not labels[0].startswith("LABEL_"):
        kwargs["id2label"] = dict(enumerate(labels))
        kwargs["label2id"] = {n: i for i, n in enumerate(labels)}
    model = transformers.VitPoseForPoseEstimation(
        transformers.VitPoseConfig(backbone_config=backbone, **kwargs)
    )
    with torch.no_grad():
        # Positive heatmaps with strong image-dependent structure: the reference
        # decoder marks non-positive peaks as "no keypoint" (-1).
        model.head.conv.weight.mul_(8.0)
        model.head.conv.bias.fill_(1.0)
    model.save_pretrained(folder)
    transformers.VitPoseImageProcessor(size={"height": 128, "width": 96}).save_pretrained(folder)
    return folder


def save_tiny_rtdetr(folder: Path, labels: dict[int, str]) -> Path:
    import torch
    import transformers

    torch.manual_seed(0)
    backbone = transformers.RTDetrResNetConfig(
        embedding_size=8,
        hidden_sizes=[8, 16, 32, 64],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],
    )
    config = transformers.RTDetrConfig(
        backbone_config=backbone,
        encoder_in_channels=[16, 32, 64],
        encoder_hidden_dim=16,
        d_model=16,
        decoder_in_channels=[16, 16, 16],
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        decoder_layers=1,
        num_queries=30,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_denoising=0,
        num_labels=len(labels),
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    model = transformers.RTDetrForObjectDetection(config)
    with torch.no_grad():
        # Spread the scores so that a threshold keeps some queries, and make the
        # non-person classes unlikely.
        head = model.model.decoder.class_embed[-1]
        head.weight.mul_(40.0)
        for index, name in labels.items():
            head.bias[index] = 0.0 if name == "person" else -8.0
    model.save_pretrained(folder)
    transformers.RTDetrImageProcessor(size={"height": 128, "width": 128}).save_pretrained(folder)
    return folder


#: Class ids the random YOLO models are biased to predict (COCO numbering).
YOLO_PERSON, YOLO_CAR = 0, 2


def save_random_yolo(path: Path, *, pose: bool = False) -> Path:
    """An Ultralytics YOLOv8n (or YOLOv8n-pose) built from its YAML config with random
    weights, saved as a ``.pt`` of the test's own making (never downloaded).

    The class logits of each detection scale (strides 8, 16, 32) are set so that the
    random model predicts confident boxes: persons on two scales and cars on the other
    (Ultralytics gives every anchor its top class, so mixing classes needs different
    scales); the pose model predicts persons only.
    """
    import torch
    from ultralytics import YOLO

    model = YOLO("yolov8n-pose.yaml" if pose else "yolov8n.yaml")
    scales = [{YOLO_PERSON: 4.0}] * 3 if pose else [
        {YOLO_PERSON: 4.0}, {YOLO_CAR: 5.0}, {YOLO_PERSON: 3.0}
    ]  # fmt: skip
    head = model.model.model[-1]
    known = {YOLO_PERSON: "person", YOLO_CAR: "car"}
    # a model built from a YAML config has numbered classes; name them as COCO does
    model.model.names = {i: known.get(i, f"class{i}") for i in range(head.nc)}
    with torch.no_grad():
        for branch, biases in zip(head.cv3, scales):
            branch[-1].bias[:] = -12.0
            for cls, value in biases.items():
                branch[-1].bias[cls] = value
    model.save(str(path))
    return path
