"""The package's layer rules and size limits, checked on the source (docs/ARCHITECTURE.md).

Layers only import downwards: a layer may use any layer below it, never one above
it, and peers do not import each other except where the table below says so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "posekit"

#: Layer of each top-level module or package of posekit (higher imports lower).
LAYERS: dict[str, int] = {
    # core types and media
    "statuses": 0,
    "gc_pause": 0,
    "core": 1,
    "skeleton": 1,
    "media": 1,
    # the bundled sample images (data only)
    "demo": 1,
    "dataset": 2,
    # peers: backends, formats, evaluation, drawing, tracking
    "models": 3,
    "formats": 3,
    "evaluation": 3,
    "render": 3,
    "tracking": 3,
    # store-free pipelines
    "pipeline": 4,
    # the project database
    "store": 5,
    # running jobs: local, Ray
    "engines": 6,
    # the edges
    "server": 7,
    "cli": 7,
}

#: Peer imports that are allowed on purpose: (importer, imported).
ALLOWED_PEERS = {
    # tracking metrics match tracks with the tracker's own OKS helpers
    ("evaluation", "tracking"),
    # render_coco draws a COCO file: it reads it with the COCO reader
    ("render", "formats"),
    # `posekit serve` / `posekit demo` start the server
    ("cli", "server"),
}

MAX_LINES = 600


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _top(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "posekit" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every posekit import in a file, including lazy ones."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(("posekit", *path.relative_to(SRC).with_suffix("").parts[:-1]))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            out.append((node.lineno, module))
    return [(line, m) for line, m in out if m.startswith("posekit")]


def _layer_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_top_level_module_has_a_layer() -> None:
    names = {_layer_of(p) for p in _modules()} - {"__init__", "__main__"}
    assert names <= set(LAYERS), f"give these a layer in LAYERS: {sorted(names - set(LAYERS))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_go_downwards(path: Path) -> None:
    own = _layer_of(path)
    if own in ("__init__", "__main__"):
        return
    bad = []
    for line, module in _imports(path):
        other = _top(module)
        if other is None or other == own or other not in LAYERS:
            continue
        if LAYERS[other] > LAYERS[own] or (
            LAYERS[other] == LAYERS[own] and (own, other) not in ALLOWED_PEERS
        ):
            bad.append(f"line {line}: {own} (layer {LAYERS[own]}) imports {module}")
    assert not bad, "\n".join(bad)


def test_yolo_does_not_import_coco() -> None:
    modules = [m for _, m in _imports(SRC / "formats" / "yolo.py")]
    assert not [m for m in modules if m.startswith("posekit.formats.coco")]


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in sorted(SRC.rglob("*"))
        if p.suffix in (".py", ".js") and "__pycache__" not in p.parts
    ],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_no_module_over_600_lines(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, (
        f"{path.relative_to(SRC)} has {lines} lines; split it by what it holds"
    )
