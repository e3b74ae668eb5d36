"""The name -> factory tables: lookup, errors, lazy imports, user registration."""

import json
import subprocess
import sys

import pytest

import posekit.models
from posekit.models.base import ModelError
from posekit.models.catalog import BACKENDS
from posekit.models.registry import (
    DETECTORS,
    POSE_ESTIMATORS,
    create_detector,
    create_pose_estimator,
    parse_spec,
    spec_factory,
)


class FakeBackend:
    name = "fake"
    device = "cpu"

    def __init__(self, weights=None, threshold=0.5):
        self.weights, self.threshold = weights, threshold

    def close(self):
        pass


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("blazepose", ("blazepose", None)),
        ("ViTPose:org/model", ("vitpose", "org/model")),
        (" rtdetr :C:/models/rt", ("rtdetr", "C:/models/rt")),
        ("yolo:", ("yolo", "")),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


def test_tables_are_plain_dicts_matching_the_catalog():
    assert type(DETECTORS) is dict and type(POSE_ESTIMATORS) is dict
    for backend in BACKENDS:
        assert (backend.name in DETECTORS) == ("detector" in backend.kind), backend.name
        assert (backend.name in POSE_ESTIMATORS) == ("pose" in backend.kind), backend.name
    assert posekit.models.create_detector is create_detector
    assert posekit.models.create_pose_estimator is create_pose_estimator


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ModelError, match=r"unknown detector 'nope'; available: blazepose, rtdetr"):
        create_detector("nope:x")
    with pytest.raises(ModelError, match=r"unknown pose estimator 'rtdetr'.*vitpose"):
        create_pose_estimator("rtdetr")


def test_spec_factory_passes_the_argument_unless_given_explicitly(monkeypatch):
    monkeypatch.setitem(DETECTORS, "fake", spec_factory(FakeBackend, "weights"))
    made = create_detector("fake:/w.bin", threshold=0.9)
    assert isinstance(made, FakeBackend) and made.weights == "/w.bin" and made.threshold == 0.9
    assert create_detector("fake").weights is None
    assert create_detector("fake:/w.bin", weights="/other").weights == "/other"
    assert DETECTORS["fake"].__name__ == "create_FakeBackend"


def test_missing_library_names_the_extra(monkeypatch):
    def needs_ultralytics(arg, **options):
        raise ImportError("No module named 'ultralytics'", name="ultralytics")

    monkeypatch.setitem(DETECTORS, "yolo", needs_ultralytics)
    with pytest.raises(ModelError, match=r"'ultralytics'.*pip install 'posekit\[ultralytics\]'"):
        create_detector("yolo:yolov8n.pt")
    monkeypatch.setitem(POSE_ESTIMATORS, "mine", needs_ultralytics)
    with pytest.raises(ModelError, match="install its dependencies"):
        create_pose_estimator("mine")


def test_backend_errors_pass_through_unchanged(monkeypatch):
    def broken(arg, **options):
        raise ModelError("weights are corrupt")

    monkeypatch.setitem(POSE_ESTIMATORS, "broken", broken)
    with pytest.raises(ModelError, match=r"^weights are corrupt$"):
        create_pose_estimator("broken")


def test_vitpose_needs_a_checkpoint():
    with pytest.raises(ModelError, match="needs a checkpoint"):
        create_pose_estimator("vitpose")


def test_importing_the_registry_loads_no_backend():
    code = (
        "import json, sys, posekit, posekit.models, posekit.models.registry;"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('posekit.models.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert loaded == ["posekit.models.base", "posekit.models.catalog", "posekit.models.registry"]


def test_built_in_names():
    assert set(DETECTORS) == {"blazepose", "rtdetr", "yolo"}
    assert set(POSE_ESTIMATORS) == {"blazepose", "vitpose", "yolo"}
