"""The statements the save path builds once and runs with parameters give the same
answers as the separate reads they stand for: ``access_of`` (the authorization
guard's one query), the template check of ``patch_instance`` and the item status
settled after every write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from posekit import Instance
from posekit.core import InstanceError
from posekit.skeleton import Skeleton
from posekit.store import NotFoundError, Workspace
from posekit.store.members import OWNED_KINDS, Access

from .workflow_factories import Team, make_team


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    team = make_team(tmp_path, num_items=4)
    yield team
    team.ws.close()


def _instance(seed: int, status: str = "accepted") -> Instance:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 8, (17, 2)).astype(np.float32)
    return Instance(xy, np.full(17, 2, np.uint8), status=status)


def _expected(ws: Workspace, user_id: int, kind: str, object_id: int) -> Access:
    """What ``access_of`` answers, from the separate reads."""
    project_id = ws.project_id_of(kind, object_id)
    role = ws.role_of(user_id, project_id)
    if kind == "item":
        item_id = object_id
    elif kind == "instance":
        item_id = ws.item_of_instance(object_id)  # a deleted one too, from its history
    else:
        return Access(project_id, role)
    assignee, stage = ws.item_assignment(item_id)
    return Access(project_id, role, item_id, assignee, stage)


def test_access_of_answers_as_the_separate_reads_for_every_user_and_object(team: Team) -> None:
    ws, ids = team.ws, team.ids
    ws.assign_items("people", ids[:2], team.annotator.id, by=team.manager.id)
    ws.assign_items("people", [ids[2]], team.annotator2.id, by=team.manager.id)
    kept = ws.add_instance(ids[0], _instance(0))
    other = ws.add_instance(ids[2], _instance(1))
    gone = ws.add_instance(ids[1], _instance(2))
    ws.delete_instance(gone.id, gone.version, author_id=team.annotator.id)
    thread = ws.add_comment(ids[3], team.reviewer.id, "look at the wrist")
    outsider = ws.create_user("outsider")
    project = ws.get_project("people")
    dataset = ws.list_datasets("people")[0]
    objects = [
        ("project", project.id),
        ("dataset", dataset.id),
        *[("item", i) for i in ids],
        ("instance", kept.id),
        ("instance", other.id),
        ("instance", gone.id),
        ("comment", thread.id),
    ]
    users = [team.manager, team.annotator, team.annotator2, team.reviewer, team.viewer, outsider]
    answers = set()
    for user in users:
        for kind, object_id in objects:
            got = ws.access_of(user.id, kind, object_id)
            assert got == _expected(ws, user.id, kind, object_id), (user.username, kind)
            answers.add(got)
    # The parameters reach the statement: different users and objects, different answers.
    assert len(answers) > len(objects)
    assert ws.access_of(team.annotator.id, "instance", gone.id) == Access(
        project.id, "annotator", ids[1], team.annotator.id, "annotation"
    )
    assert ws.access_of(outsider.id, "item", ids[0]).role is None


@pytest.mark.parametrize("kind", OWNED_KINDS)
def test_access_of_a_missing_object_is_not_found(team: Team, kind: str) -> None:
    with pytest.raises(NotFoundError, match=f"{kind} 987654 does not exist"):
        team.ws.access_of(team.manager.id, kind, 987654)


def test_patch_checks_against_a_template_changed_by_another_workspace(team: Team) -> None:
    """The template's decoded copy is reused only while its version is current: after
    another workspace (process) adds a keypoint, 18 points are valid and 17 are not."""
    ws, ids = team.ws, team.ids
    record = ws.add_instance(ids[0], _instance(3))
    first = ws.patch_instance(record.id, {"status": "accepted"}, record.version)
    data = ws.get_project("people").template.to_dict()
    longer = Skeleton.from_dict(
        {
            **data,
            "keypoints": [*data["keypoints"], "tail"],
            "sigmas": [*data["sigmas"], 0.05],
            "keypoint_colors": [*data["keypoint_colors"], [1, 2, 3]],
        }
    )
    with Workspace(ws.root) as other:  # another process, as far as caches go
        other.change_template("people", longer)
    changed = ws.get_instance(record.id)
    assert changed.version == first.version + 1  # the change wrote every instance
    assert changed.instance.num_keypoints == 18
    with pytest.raises(InstanceError, match="18"):
        ws.patch_instance(record.id, {"keypoints": np.ones((17, 2))}, changed.version)
    written = ws.patch_instance(record.id, {"keypoints": np.ones((18, 2))}, changed.version)
    assert written.version == changed.version + 1
    assert written.instance.num_keypoints == 18
    # (the new point has visibility 0: stored as not labeled)
    np.testing.assert_array_equal(written.instance.keypoints[:17], np.ones((17, 2), np.float32))


def test_every_patch_writes_exactly_the_merged_instance_and_settles_the_item(
    team: Team,
) -> None:
    ws, ids = team.ws, team.ids
    predicted = ws.add_instance(ids[0], _instance(4, "predicted"))
    person = ws.add_instance(ids[0], _instance(5))
    assert ws.get_item(ids[0]).status == "predicted"
    rng = np.random.default_rng(9)
    current = {r.id: r for r in (predicted, person)}
    written_versions = {r.id: [r] for r in (predicted, person)}
    changes_list = [
        {"keypoints": rng.uniform(0, 8, (17, 2)).tolist()},
        {"visibility": [1] * 17, "score": 0.25},
        {"box": [1.0, 2.0, 3.0, 4.0], "extra": {"note": "ß"}},
        {"status": "accepted"},
    ]
    for changes in changes_list:
        for instance_id in list(current):
            before = current[instance_id]
            written = ws.patch_instance(
                instance_id, changes, before.version, author_id=team.manager.id
            )
            expected = before.instance.copy(
                **{k: np.asarray(v) if isinstance(v, list) else v for k, v in changes.items()}
            )
            stored = ws.get_instance(instance_id)
            assert written == stored
            assert stored.version == before.version + 1
            assert stored.author_id == team.manager.id
            for name in ("keypoints", "visibility", "box"):
                want, got = getattr(expected, name), getattr(stored.instance, name)
                if want is None:
                    assert got is None
                else:
                    np.testing.assert_array_equal(got, np.asarray(want, got.dtype))
            assert (stored.instance.score, stored.instance.extra, stored.instance.status) == (
                expected.score,
                expected.extra,
                expected.status,
            )
            current[instance_id] = stored
            written_versions[instance_id].append(stored)
    # The prediction was accepted by a person: no prediction left, the item is reviewed.
    assert ws.get_item(ids[0]).status == "reviewed"
    # Each replaced version is in the history exactly as it was stored.
    for instance_id, records in written_versions.items():
        history = ws.instance_history(instance_id)
        assert [v.version for v in history] == [r.version for r in records]
        for version, record in zip(history, records, strict=True):
            np.testing.assert_array_equal(version.instance.keypoints, record.instance.keypoints)
            assert version.instance.status == record.instance.status
