"""Tests for posekit.media.paths: the one path-safety check for outside file names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posekit.media.paths import UnsafePathError, safe_relative_name, safe_relative_path


def test_safe_relative_path() -> None:
    assert safe_relative_path("images\\val\\1.jpg").as_posix() == "images/val/1.jpg"
    assert safe_relative_path("./a/b.jpg").as_posix() == "a/b.jpg"
    assert safe_relative_path("a..b.jpg").name == "a..b.jpg"
    for bad in ("..", "a/../../b", "/abs", "D:x.jpg", ".", None):
        with pytest.raises(UnsafePathError):
            safe_relative_path(bad)  # type: ignore[arg-type]


def test_safe_relative_path_messages_name_the_reason() -> None:
    cases = {
        "": "non-empty string",
        "a\x00b": "NUL",
        "/etc/passwd": "absolute path",
        "\\server\\share": "absolute path",
        "C:\\x.jpg": "drive letter",
        "a/../b": "climbs out",
        "./": "names no file",
    }
    for name, reason in cases.items():
        with pytest.raises(UnsafePathError, match=reason):
            safe_relative_path(name)


def test_safe_relative_name_is_the_posix_form() -> None:
    assert safe_relative_name("000000000785.jpg") == "000000000785.jpg"
    assert safe_relative_name("a..b/c.jpg") == "a..b/c.jpg"
    assert safe_relative_name("images\\val\\1.jpg") == "images/val/1.jpg"
    assert safe_relative_name("./a//b/.hidden/") == "a/b/.hidden"
    assert safe_relative_name("ab:c.jpg") == "ab:c.jpg"
    with pytest.raises(UnsafePathError, match="climbs out"):
        safe_relative_name("a/..")


@given(st.text(alphabet="ab./\\:\x00C", max_size=12))
def test_fast_and_full_checks_agree(name: str) -> None:
    """The fast path for plain names accepts only what the full check accepts, and
    returns what it returns."""
    try:
        expected = safe_relative_path(name).as_posix()
    except UnsafePathError:
        with pytest.raises(UnsafePathError):
            safe_relative_name(name)
        return
    assert safe_relative_name(name) == expected
