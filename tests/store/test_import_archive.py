"""Unpacking another tool's export zip safely and finding the dataset in it
(:mod:`posekit.store.import_archive`)."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from posekit.store.import_archive import (
    ArchiveError,
    is_zip_file,
    link_by_base_name,
    locate_dataset,
    unpack_archive,
)


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


def test_unpacks_and_leaves_macos_debris_out(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "a.zip",
        {"x/annotations.xml": b"<a/>", "__MACOSX/x/._annotations.xml": b"j", "x/.DS_Store": b"j"},
    )
    (tmp_path / "a.json").write_bytes(b"{}")
    assert is_zip_file(archive) and not is_zip_file(tmp_path / "a.json")
    root = unpack_archive(archive, tmp_path / "out")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "x/annotations.xml"
    ]


@pytest.mark.parametrize(
    "name", ["../evil.xml", "/etc/evil.xml", "C:/evil.xml", "a/../../evil.xml", "a\\..\\..\\e.xml"]
)
def test_refuses_names_that_leave_the_folder(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "a.zip", {name: b"<a/>"})
    with pytest.raises(ArchiveError, match="zip member"):
        unpack_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.xml").exists()


def test_refuses_links_duplicates_and_sizes(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("images/link.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as bundle:
        bundle.writestr(link, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        unpack_archive(tmp_path / "link.zip", tmp_path / "out1")

    with zipfile.ZipFile(tmp_path / "twice.zip", "w") as bundle:
        bundle.writestr("a.xml", "1")
        bundle.writestr("A.xml", "2")  # one file on case-insensitive file systems
    with pytest.raises(ArchiveError, match="appears twice"):
        unpack_archive(tmp_path / "twice.zip", tmp_path / "out2")

    big = make_zip(tmp_path / "big.zip", {"a.xml": b"0" * 5000, "b.xml": b"0" * 5000})
    with pytest.raises(ArchiveError, match="too large"):
        unpack_archive(big, tmp_path / "out3", max_member_bytes=4000)
    with pytest.raises(ArchiveError, match="more than 8000 bytes"):
        unpack_archive(big, tmp_path / "out4", max_total_bytes=8000)
    with pytest.raises(ArchiveError, match="2 members, more than 1"):
        unpack_archive(big, tmp_path / "out5", max_members=1)


def test_a_header_that_lies_about_the_size_does_not_get_past_the_limit(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"a.xml": b"0" * 100_000})
    data = bytearray(archive.read_bytes())
    # Shrink the declared uncompressed size (local header and central directory) to 10.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        data[at + offset : at + offset + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        unpack_archive(archive, tmp_path / "out", max_member_bytes=1000)


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "a.zip").write_bytes(b"PK\x03\x04 then nothing")
    with pytest.raises(ArchiveError, match="not a readable zip"):
        unpack_archive(tmp_path / "a.zip", tmp_path / "out")


def test_locates_file_formats_and_their_images(tmp_path: Path) -> None:
    root = tmp_path / "export"
    (root / "images" / "default").mkdir(parents=True)
    (root / "annotations.xml").write_text("<a/>")
    (root / "images" / "default" / "a.jpg").write_bytes(b"jpg")
    found = locate_dataset(root, "cvat")
    assert found.source == root / "annotations.xml"
    assert found.image_root == root / "images" / "default"

    (root / "b.jpg").write_bytes(b"jpg")  # images in two places: the file's names decide
    found = locate_dataset(root, "cvat", lambda source: ["b.jpg"])
    assert found.image_root == root
    found = locate_dataset(root, "cvat", lambda source: ["a.jpg"])
    assert found.image_root == root / "images" / "default"


def test_several_annotation_files(tmp_path: Path) -> None:
    root = tmp_path / "export"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.json").write_text("{}")
    (root / "annotations" / "val.json").write_text("{}")
    with pytest.raises(ArchiveError, match="2 COCO keypoints files"):
        locate_dataset(root, "coco")
    (root / "annotations.json").write_text("{}")
    assert locate_dataset(root, "coco").source == root / "annotations.json"
    with pytest.raises(ArchiveError, match="no CVAT"):
        locate_dataset(root, "cvat")


def test_locates_folder_formats(tmp_path: Path) -> None:
    dlc = tmp_path / "dlc" / "openfield-2018"
    (dlc / "labeled-data" / "m4s1").mkdir(parents=True)
    (dlc / "config.yaml").write_text("bodyparts: [a]\n")
    found = locate_dataset(tmp_path / "dlc", "deeplabcut")
    assert found.source == dlc and found.image_root == dlc

    sly = tmp_path / "sly" / "project"
    for dataset in ("ds0", "street"):
        (sly / dataset / "img").mkdir(parents=True)
        (sly / dataset / "ann").mkdir()
        (sly / dataset / "img" / "a.jpg").write_bytes(dataset.encode())
    (sly / "meta.json").write_text("{}")
    found = locate_dataset(tmp_path / "sly", "supervisely")
    assert found.source == sly
    # posekit's names: ds0's images without the dataset, the others under it.
    assert (found.image_root / "a.jpg").read_bytes() == b"ds0"
    assert (found.image_root / "street" / "a.jpg").read_bytes() == b"street"
    with pytest.raises(ArchiveError, match="no Supervisely project"):
        locate_dataset(tmp_path / "dlc", "supervisely")


def test_link_by_base_name(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"1")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "same.jpg").write_bytes(b"2")
    (tmp_path / "same.jpg").write_bytes(b"3")
    names = ["upload/18/photo.jpg", "upload/3/0a1b2c3d-photo.jpg", "a/same.jpg", "photo.jpg"]
    assert link_by_base_name(tmp_path, names) == names[:2]  # same.jpg: two candidates
    assert (tmp_path / "upload" / "18" / "photo.jpg").read_bytes() == b"1"
    assert (tmp_path / "upload" / "3" / "0a1b2c3d-photo.jpg").read_bytes() == b"1"
    assert not (tmp_path / "a").exists()
    assert link_by_base_name(tmp_path / "missing", names) == []
