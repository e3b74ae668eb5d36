"""Store-free pipelines: predict (detect -> crop -> estimate), assist (box -> pose),
run_pipeline (a frame source -> detect -> pose -> a prediction sink), predict_files.

Auto-labeling a project (store-backed) is :func:`posekit.engines.local.autolabel`.
"""

from posekit.pipeline.assist import assist
from posekit.pipeline.options import AutolabelOptions
from posekit.pipeline.predict import predict
from posekit.pipeline.predict_files import FilePrediction, predict_files
from posekit.pipeline.run import (
    FrameError,
    FrameSource,
    PipelineSummary,
    PredictionSink,
    WorkUnit,
    run_pipeline,
)

__all__ = [
    "AutolabelOptions",
    "FilePrediction",
    "FrameError",
    "FrameSource",
    "PipelineSummary",
    "PredictionSink",
    "WorkUnit",
    "assist",
    "predict",
    "predict_files",
    "run_pipeline",
]
