"""The project store: workspace folder, database (SQLAlchemy) and media files.

This is the only layer that knows SQL. Everything crossing its API is a plain
dataclass (:class:`Project`, :class:`Dataset`, :class:`Item`,
:class:`InstanceRecord`) or a :class:`posekit.core.Instance`.

Example:
    >>> from posekit.skeleton import get_preset
    >>> from posekit.store import Workspace, import_images
    >>> ws = Workspace("posekit-data")  # doctest: +SKIP
    >>> ws.create_project("people", get_preset("coco17"))  # doctest: +SKIP
    >>> import_images(ws, "people", "train", ["photos/"])  # doctest: +SKIP
"""

from posekit.store.io import (
    ExportReport,
    ImportReport,
    export_coco,
    export_yolo,
    import_coco,
    import_images,
    project_to_coco,
)
from posekit.store.workspace import (
    DEFAULT_WORKSPACE,
    ITEM_STATUSES,
    WORKSPACE_ENV,
    AlreadyExistsError,
    Dataset,
    InstanceRecord,
    Item,
    NotFoundError,
    Project,
    StaleVersionError,
    StoreError,
    Workspace,
)

__all__ = [
    "DEFAULT_WORKSPACE",
    "ITEM_STATUSES",
    "WORKSPACE_ENV",
    "AlreadyExistsError",
    "Dataset",
    "ExportReport",
    "ImportReport",
    "InstanceRecord",
    "Item",
    "NotFoundError",
    "Project",
    "StaleVersionError",
    "StoreError",
    "Workspace",
    "export_coco",
    "export_yolo",
    "import_coco",
    "import_images",
    "project_to_coco",
]
