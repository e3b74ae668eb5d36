"""Pipelines: predict (detect -> crop -> estimate), assist (box -> pose), autolabel."""

from posekit.pipeline.assist import assist
from posekit.pipeline.autolabel import AutolabelReport, autolabel
from posekit.pipeline.predict import predict

__all__ = ["AutolabelReport", "assist", "autolabel", "predict"]
