"""Instances through the API: numbers beyond float32 are refused with 422 naming the
field, and nothing is written (issue 8)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from PIL import Image

from posekit.server.schemas import InstanceIn, InstanceUpdate

from .test_api import make_client, manual_instance, new_project


@pytest.mark.parametrize(
    ("field", "value"),
    [("keypoints", [[1e39, 5.0]] + [[1.0, 1.0]] * 16), ("box", [0, 0, 1e308, 4]), ("score", 1e39)],
)
def test_schema_refuses_numbers_beyond_float32(field, value) -> None:
    from pydantic import ValidationError

    body = {**manual_instance(), field: value}
    with pytest.raises(ValidationError) as info:
        InstanceIn.model_validate(body)
    [error] = info.value.errors()
    assert error["loc"][0] == field and "float32" in error["msg"]
    with pytest.raises(ValidationError):
        InstanceUpdate.model_validate({"version": 1, field: value})


def test_api_answers_422_naming_the_field_and_writes_nothing(tmp_path: Path) -> None:
    for client in make_client(tmp_path):
        pid = new_project(client)
        buffer = io.BytesIO()
        Image.new("RGB", (200, 150)).save(buffer, format="PNG")
        files = [("files", ("a.png", buffer.getvalue(), "image/png"))]
        assert client.post(f"/api/projects/{pid}/upload", files=files).status_code == 200
        [item] = client.get(f"/api/projects/{pid}/items").json()["items"]
        body = manual_instance()
        body["keypoints"][2] = [1e39, 10.0]
        response = client.post(f"/api/items/{item['id']}/instances", json=body)
        assert response.status_code == 422, response.text
        assert "keypoints" in response.text and "float32" in response.text
        assert client.get(f"/api/items/{item['id']}").json()["instances"] == []
