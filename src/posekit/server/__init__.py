"""The posekit web server: a FastAPI app over the store and pipelines, and the browser UI.

Needs the ``[server]`` extra (fastapi, uvicorn, python-multipart, pydantic-settings).

Example:
    >>> from posekit.server import Settings, create_app  # doctest: +SKIP
    >>> app = create_app(Settings(workspace="posekit-data"))  # doctest: +SKIP
"""

from posekit.server.app import create_app
from posekit.server.settings import Settings

__all__ = ["Settings", "create_app"]
