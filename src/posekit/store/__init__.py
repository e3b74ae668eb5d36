"""The project store: workspace folder, database (SQLAlchemy + Alembic) and media files.

This is the only layer that knows SQL. Everything crossing its API is a plain
dataclass (:class:`Project`, :class:`Dataset`, :class:`Item`,
:class:`InstanceRecord`) or a :class:`posekit.core.Instance`.

Modules: :mod:`~posekit.store.workspace` (the :class:`Workspace`: projects,
datasets, items), :mod:`~posekit.store.instances` (instances, predictions,
``patch_instance`` and ``review``), :mod:`~posekit.store.imports` and
:mod:`~posekit.store.exports` (files in and out through the format table),
:mod:`~posekit.store.queries` (listings for the web app),
:mod:`~posekit.store.tables` (ORM tables), :mod:`~posekit.store.schema` and
``migrations/`` (Alembic), :mod:`~posekit.store.records`,
:mod:`~posekit.store.errors`, and the helpers :mod:`~posekit.store.codec`,
:mod:`~posekit.store.bulk` and :mod:`~posekit.store.media_staging`.

Example:
    >>> from posekit.skeleton import get_preset
    >>> from posekit.store import Workspace, import_images
    >>> ws = Workspace("posekit-data")  # doctest: +SKIP
    >>> ws.create_project("people", get_preset("coco17"))  # doctest: +SKIP
    >>> import_images(ws, "people", "train", ["photos/"])  # doctest: +SKIP
"""

from posekit.statuses import ITEM_STATUSES
from posekit.store.errors import (
    AlreadyExistsError,
    NotFoundError,
    SchemaVersionError,
    StaleVersionError,
    StoreError,
)
from posekit.store.exports import (
    ExportReport,
    export,
    export_coco,
    export_yolo,
    project_to_coco,
    project_to_dataset,
)
from posekit.store.history import InstanceVersion, StaleRestoreError
from posekit.store.imports import ImportReport, import_coco, import_dataset, import_images
from posekit.store.records import (
    AccessToken,
    Dataset,
    InstanceRecord,
    Item,
    Member,
    Project,
    User,
)
from posekit.store.template_change import (
    TemplateChange,
    TemplateChangeError,
    TemplateVersionError,
)
from posekit.store.workspace import DEFAULT_WORKSPACE, WORKSPACE_ENV, Workspace

__all__ = [
    "DEFAULT_WORKSPACE",
    "ITEM_STATUSES",
    "WORKSPACE_ENV",
    "AccessToken",
    "AlreadyExistsError",
    "Dataset",
    "ExportReport",
    "ImportReport",
    "InstanceRecord",
    "InstanceVersion",
    "Item",
    "Member",
    "NotFoundError",
    "Project",
    "SchemaVersionError",
    "StaleRestoreError",
    "StaleVersionError",
    "StoreError",
    "TemplateChange",
    "TemplateChangeError",
    "TemplateVersionError",
    "User",
    "Workspace",
    "export",
    "export_coco",
    "export_yolo",
    "import_coco",
    "import_dataset",
    "import_images",
    "project_to_coco",
    "project_to_dataset",
]
