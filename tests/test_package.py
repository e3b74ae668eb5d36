"""Package-level promises: importing posekit is cheap and pulls in no heavy library."""

import subprocess
import sys


def test_import_posekit_does_not_import_heavy_libraries():
    code = (
        "import sys, posekit, posekit.models, posekit.pipeline;"
        "heavy = [m for m in ('torch', 'transformers', 'mediapipe', 'ai_edge_litert', "
        "'sqlalchemy', 'cv2', 'pycocotools') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_lists_every_subcommand():
    out = subprocess.run(
        [sys.executable, "-m", "posekit.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in (
        "predict",
        "eval",
        "init",
        "import",
        "autolabel",
        "export",
        "render",
        "templates",
        "demo",
        "models",
    ):
        assert command in out.stdout
