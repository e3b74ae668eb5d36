"""Tests for posekit.store.queries: item listings, filters, review order and counts."""

from __future__ import annotations

import pytest

from posekit import get_preset
from posekit.store import NotFoundError, StoreError
from posekit.store.queries import (
    ITEM_FILTERS,
    dataset_item_counts,
    get_project_by_id,
    instance_item_ids,
    item_summaries,
    item_summary,
    project_counts,
    project_id_of_item,
)

from .store_factories import make_person, make_prediction


@pytest.fixture
def labeled(people):
    """img0: two predictions (0.9, 0.2); img1: labeled by hand; img2: new."""
    ws, items = people
    ws.write_predictions(
        {items[0].id: [make_prediction(1, score=0.9), make_prediction(2, score=0.2)]},
        overwrite=False,
    )
    ws.add_instance(items[1], make_person(3))
    return ws, items, ws.get_project("people").id


def test_filters_are_the_item_statuses(labeled) -> None:
    ws, _, pid = labeled
    assert ITEM_FILTERS == ("all", "new", "predicted", "reviewed")

    def names(filter: str) -> list[str]:
        total, page = item_summaries(ws, pid, filter=filter)
        assert total == len(page)
        return [s.file_name for s in page]

    assert names("all") == ["img0.png", "img1.png", "img2.png"]
    assert names("new") == ["img2.png"]
    assert names("predicted") == ["img0.png"]
    assert names("reviewed") == ["img1.png"]
    # The 0.1.0 names, derived from the instances, until the API has switched.
    assert names("unlabeled") == ["img2.png"] and names("accepted") == ["img1.png"]
    with pytest.raises(StoreError, match="'bogus' is not one of all, new, predicted, reviewed"):
        item_summaries(ws, pid, filter="bogus")


def test_summaries_count_instances_and_order_the_review_queue(labeled) -> None:
    ws, items, pid = labeled
    total, page = item_summaries(ws, pid, order="confidence")
    assert total == 3
    # Lowest predicted score first; items without predictions last, by name.
    assert [(s.file_name, s.min_score) for s in page] == [
        ("img0.png", pytest.approx(0.2)),
        ("img1.png", None),
        ("img2.png", None),
    ]
    first = page[0]
    assert (first.num_instances, first.num_predicted, first.status) == (2, 2, "predicted")
    assert first.has_media and first.dataset == "train" and (first.width, first.height) == (64, 48)
    assert item_summary(ws, items[1].id).status == "reviewed"
    assert item_summary(ws, items[1].id).review_status == "accepted"
    # Paging.
    total, page = item_summaries(ws, pid, order="name", offset=1, limit=1)
    assert total == 3 and [s.file_name for s in page] == ["img1.png"]
    with pytest.raises(StoreError, match="order"):
        item_summaries(ws, pid, order="random")
    with pytest.raises(NotFoundError):
        item_summaries(ws, pid, dataset="nope")
    with pytest.raises(NotFoundError):
        item_summary(ws, 999)


def test_counts_and_id_lookups(labeled) -> None:
    ws, items, pid = labeled
    other = ws.create_project("other", get_preset("coco17"))
    ws.create_dataset(other, "empty")
    assert project_counts(ws) == {pid: (3, 3), other.id: (0, 0)}
    train = ws.get_dataset("people", "train")
    assert dataset_item_counts(ws, pid) == {train.id: 3}
    assert dataset_item_counts(ws, other.id) == {ws.get_dataset(other, "empty").id: 0}
    assert get_project_by_id(ws, pid).name == "people"
    assert project_id_of_item(ws, items[2].id) == pid
    with pytest.raises(NotFoundError):
        get_project_by_id(ws, 999)
    with pytest.raises(NotFoundError):
        project_id_of_item(ws, 999)
    records = ws.get_instance_records(items[0])
    assert instance_item_ids(ws, [r.id for r in records] + [12345]) == {
        r.id: items[0].id for r in records
    }
