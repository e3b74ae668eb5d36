"""The documented detector + pose pipelines and their licences (posekit models)."""

from posekit.cli import main
from posekit.models.catalog import BACKENDS, PIPELINES, pipeline_licenses
from posekit.models.registry import DETECTORS, POSE_ESTIMATORS, parse_spec


def test_every_pipeline_names_registered_backends():
    for pipe in PIPELINES:
        assert parse_spec(pipe.detector)[0] in DETECTORS, pipe
        assert parse_spec(pipe.pose)[0] in POSE_ESTIMATORS, pipe


def test_licence_clean_means_no_copyleft_backend():
    verdicts = {pipe.name: pipeline_licenses(pipe) for pipe in PIPELINES}
    assert verdicts["rtdetr-vitpose"] == (("Apache-2.0",), True)
    assert verdicts["offline-default"][1] is True
    assert verdicts["yolo-vitpose"] == (("AGPL-3.0", "Apache-2.0"), False)
    assert verdicts["yolo-pose"] == (("AGPL-3.0",), False)
    assert {b.name: b.license for b in BACKENDS}["yolo"] == "AGPL-3.0"


def test_posekit_models_lists_the_pipelines(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "rtdetr-vitpose" in out and "licence-clean" in out
    assert "yolo-vitpose" in out and "copyleft: AGPL-3.0" in out
