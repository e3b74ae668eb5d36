"""media.image: an image refused as too large does not leak its file handle."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import pytest
from PIL import Image

from posekit.media import ImageError, image, image_size


def test_too_large_image_is_closed(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    monkeypatch.setattr(image, "MAX_PIXELS", 50 * 50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(ImageError, match="too large"):
            image_size(path)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
