"""Engines run an auto-label job: they connect pipeline sources and sinks to the store.

Every engine is a callable with the signature of
:func:`posekit.engines.local.autolabel`:
``engine(ws, project, options, *, progress=None, should_stop=None) -> AutolabelReport``.
Adding one (e.g. a Ray engine) is one module plus one line in :data:`ENGINES`.

Example:
    >>> from posekit.engines import get_engine
    >>> from posekit.pipeline.options import AutolabelOptions
    >>> report = get_engine("local")(ws, "people", AutolabelOptions())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from posekit.engines.report import AutolabelReport

__all__ = ["ENGINES", "AutolabelEngine", "AutolabelReport", "get_engine"]

#: ``engine(ws, project, options, *, progress=None, should_stop=None, author_id=None)``
#: ``-> AutolabelReport``
AutolabelEngine = Callable[..., AutolabelReport]


# Each loader imports its engine when asked for, so importing posekit.engines stays cheap.
def _local() -> AutolabelEngine:
    from posekit.engines.local import autolabel

    return autolabel


def _ray() -> AutolabelEngine:
    from posekit.engines.ray import autolabel

    return autolabel


#: engine name -> loader returning the engine callable
ENGINES: dict[str, Callable[[], AutolabelEngine]] = {
    "local": _local,
    "ray": _ray,
}


def get_engine(name: str) -> AutolabelEngine:
    """The engine registered as ``name``; ``ValueError`` listing the known ones."""
    loader = ENGINES.get(name)
    if loader is None:
        raise ValueError(f"unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}")
    return loader()
