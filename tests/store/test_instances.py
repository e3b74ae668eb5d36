"""Tests for posekit.store.instances: patch_instance, review and the item status rule."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.core import InstanceError
from posekit.store import NotFoundError, StaleVersionError, StoreError

from .store_factories import make_person, make_prediction


def statuses(ws, items) -> list[str]:
    return [ws.get_item(item.id).status for item in items]


def test_patch_merges_fields_validates_and_bumps_the_version(people) -> None:
    ws, items = people
    record = ws.add_instance(items[0], make_prediction(1))
    patched = ws.patch_instance(
        record.id,
        {"keypoints": [[1.0, 2.0]] * 17, "visibility": [2] * 17, "track_id": 4},
        record.version,
    )
    assert patched.version == record.version + 1 and patched.id == record.id
    np.testing.assert_array_equal(patched.instance.keypoints, np.tile([1.0, 2.0], (17, 1)))
    assert patched.instance.track_id == 4
    # Fields not named keep their stored values.
    np.testing.assert_array_equal(patched.instance.keypoint_scores, record.instance.keypoint_scores)
    assert patched.instance.score == record.instance.score
    assert patched.instance.source == record.instance.source == "model:test"
    assert ws.get_instance(record.id) == patched
    assert patched.updated_at >= record.updated_at


def test_patch_refuses_stale_versions_and_bad_changes_without_writing(people) -> None:
    ws, items = people
    record = ws.add_instance(items[0], make_person(2))
    current = ws.patch_instance(record.id, {"status": "rejected"}, record.version)
    with pytest.raises(StaleVersionError) as stale:
        ws.patch_instance(record.id, {"status": "accepted"}, record.version)
    assert stale.value.current == current and stale.value.expected_version == record.version
    with pytest.raises(InstanceError, match=r"'colour'.*the fields are"):
        ws.patch_instance(record.id, {"colour": "red"}, current.version)
    with pytest.raises(InstanceError, match="id"):
        ws.patch_instance(record.id, {"id": 99}, current.version)
    with pytest.raises(InstanceError, match="status"):
        ws.patch_instance(record.id, {"status": "done"}, current.version)
    with pytest.raises(InstanceError, match="visibility"):
        ws.patch_instance(record.id, {"keypoints": [[0.0, 0.0]] * 5}, current.version)
    with pytest.raises(StoreError, match="5 keypoints but template 'coco17' has 17"):
        ws.patch_instance(
            record.id, {"keypoints": [[0.0, 0.0]] * 5, "visibility": [2] * 5}, current.version
        )
    with pytest.raises(NotFoundError):
        ws.patch_instance(12345, {"status": "accepted"}, 1)
    assert ws.get_instance(record.id) == current


def test_patch_settles_the_item_status(people) -> None:
    ws, items = people
    record = ws.add_instance(items[0], make_prediction(3))
    assert statuses(ws, items[:1]) == ["predicted"]
    ws.patch_instance(record.id, {"status": "accepted"}, record.version)
    assert statuses(ws, items[:1]) == ["reviewed"]


def test_review_accepts_and_rejects_and_settles_the_item(people) -> None:
    ws, items = people
    written = ws.write_predictions(
        {items[0].id: [make_prediction(4), make_prediction(5), make_prediction(6)]},
        overwrite=False,
    )
    a, b, c = written[items[0].id]
    assert statuses(ws, items[:1]) == ["predicted"]
    # One prediction left: the item still waits for review.
    out = ws.review(items[0].id, {a: "accept", b: "reject"})
    assert [(r.id, r.instance.status, r.version) for r in out] == [
        (a, "accepted", 2),
        (b, "rejected", 2),
    ]
    assert statuses(ws, items[:1]) == ["predicted"]
    # The last one, with the version the caller read: no prediction left => reviewed.
    (last,) = ws.review(items[0].id, {c: "accept"}, expected_versions={c: 1})
    assert last.instance.status == "accepted" and last.version == 2
    assert statuses(ws, items[:1]) == ["reviewed"]


def test_review_is_atomic_a_stale_version_changes_nothing(people) -> None:
    ws, items = people
    ids = ws.write_predictions(
        {items[0].id: [make_prediction(7), make_prediction(8)]}, overwrite=False
    )[items[0].id]
    moved = ws.patch_instance(ids[1], {"track_id": 9}, 1)  # someone else edited it
    before = ws.get_instance_records(items[0])
    with pytest.raises(StaleVersionError) as stale:
        ws.review(items[0].id, {ids[0]: "accept", ids[1]: "accept"}, {ids[0]: 1, ids[1]: 1})
    assert stale.value.instance_id == ids[1] and stale.value.current == moved
    assert ws.get_instance_records(items[0]) == before
    assert statuses(ws, items[:1]) == ["predicted"]


def test_review_refuses_foreign_instances_and_unknown_decisions(people) -> None:
    ws, items = people
    mine = ws.add_instance(items[0], make_prediction(10))
    other = ws.add_instance(items[1], make_prediction(11))
    with pytest.raises(StoreError, match=f"instance {other.id} is not an instance of item"):
        ws.review(items[0].id, {mine.id: "accept", other.id: "accept"})
    with pytest.raises(StoreError, match="'maybe' is not one of accept, reject"):
        ws.review(items[0].id, {mine.id: "maybe"})
    with pytest.raises(NotFoundError, match="item 999"):
        ws.review(999, {})
    assert ws.get_instance(mine.id) == mine and ws.get_instance(other.id) == other


def test_review_without_decisions_confirms_an_empty_prediction(people) -> None:
    ws, items = people
    ws.write_predictions({items[0].id: []}, overwrite=False)  # the model found nobody
    assert statuses(ws, items[:1]) == ["predicted"]
    assert ws.review(items[0].id, {}) == []
    assert statuses(ws, items[:1]) == ["reviewed"]


def test_every_write_keeps_the_item_status_settled(people) -> None:
    ws, items = people
    assert statuses(ws, items) == ["new", "new", "new"]
    manual = ws.add_instance(items[0], make_person(12))  # labeled by hand
    assert statuses(ws, items[:1]) == ["reviewed"]
    # New predictions on a reviewed item: it waits for review again.
    ws.write_predictions({items[0].id: [make_prediction(13)]}, overwrite=True)
    assert statuses(ws, items[:1]) == ["predicted"]
    prediction = next(
        r for r in ws.get_instance_records(items[0]) if r.instance.status == "predicted"
    )
    # Deleting the last prediction is a review: nothing is left to review.
    ws.delete_instance(prediction.id, prediction.version)
    assert statuses(ws, items[:1]) == ["reviewed"]
    ws.delete_instance(manual.id)
    assert statuses(ws, items[:1]) == ["reviewed"]  # a person emptied it
    # update_instance follows the same rule.
    record = ws.add_instance(items[1], make_prediction(14))
    ws.update_instance(record.id, record.instance.copy(status="accepted"), record.version)
    assert statuses(ws, items[1:2]) == ["reviewed"]
    assert statuses(ws, items[2:]) == ["new"]
