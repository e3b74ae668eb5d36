"""AutolabelOptions.existing: images a person already labeled (issue 8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakes import BrightnessDetector, GridPose
from posekit import Instance, get_preset
from posekit.engines.local import autolabel
from posekit.pipeline.options import AutolabelOptions
from posekit.store import Workspace, import_images


@pytest.fixture
def labeled(tmp_path: Path):
    """Three images with bright quadrants; img0 holds one manual person."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(3):
        pixels = np.zeros((48, 64, 3), np.uint8)
        pixels[:24, :32] = 200 + 10 * index
        Image.fromarray(pixels).save(folder / f"img{index}.png")
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    import_images(ws, "p", "default", [folder])
    first = ws.list_items("p")[0]
    manual = Instance(np.full((17, 2), 10, np.float32), np.full(17, 2, np.uint8))
    ws.add_instance(first, manual)
    yield ws, first
    ws.close()


def _run(ws: Workspace, **options) -> object:
    return autolabel(
        ws, "p", AutolabelOptions(**options), detector=BrightnessDetector(), pose=GridPose()
    )


def _sources(ws: Workspace, item) -> list[str]:
    return sorted(inst.source for inst in ws.get_instances(item))


def test_skip_fills_only_images_without_labels_even_with_overwrite(labeled) -> None:
    ws, first = labeled
    report = _run(ws, existing="skip")
    assert (report.processed, report.skipped) == (2, 1)
    assert _sources(ws, first) == ["manual"]
    again = _run(ws, existing="skip", overwrite=True)  # redo predictions, never labeled images
    assert (again.processed, again.skipped) == (2, 1)
    assert _sources(ws, first) == ["manual"]


def test_beside_adds_predictions_next_to_manual_labels_once(labeled) -> None:
    ws, first = labeled
    report = _run(ws, existing="beside")
    assert report.processed == 3
    sources = _sources(ws, first)
    assert sources[0] == "manual" and len(sources) > 1 and sources[1].startswith("model:")
    again = _run(ws, existing="beside")
    assert again.processed == 0 and _sources(ws, first) == sources


def test_replace_predictions_redoes_every_image_keeping_person_labels(labeled) -> None:
    ws, first = labeled
    _run(ws, existing="beside")
    before = len(ws.get_instances(first))
    report = _run(ws, existing="replace-predictions")
    assert report.processed == 3
    assert len(ws.get_instances(first)) == before and "manual" in _sources(ws, first)


def test_existing_is_validated() -> None:
    with pytest.raises(ValueError, match="existing must be one of skip, beside"):
        AutolabelOptions(existing="sometimes")
    assert AutolabelOptions(overwrite=True).existing_labels == "replace-predictions"
    assert AutolabelOptions().existing_labels == "skip"
