"""The path rules shared by the hub and the SDK (lucidlink/paths.py)."""

from __future__ import annotations

import pytest

from lucidlink.exceptions import InvalidPathError
from hypothesis import given
from hypothesis import strategies as st

from lucidlink.paths import (
    MAX_NAME_BYTES,
    MAX_PATH_BYTES,
    normalize_path,
    parent_and_name,
    split_path,
)


@pytest.mark.parametrize(("path", "parts"), [
    ("/", []), ("", []), ("//a//b/", ["a", "b"]), ("/a/b.c/.d", ["a", "b.c", ".d"]),
    ("/é/日本", ["é", "日本"]), ("/" + "x" * MAX_NAME_BYTES, ["x" * MAX_NAME_BYTES]),
    ("/" + "é" * (MAX_NAME_BYTES // 2), ["é" * (MAX_NAME_BYTES // 2)]),
])
def test_valid_paths_split_into_their_names(path: str, parts: list[str]) -> None:
    assert split_path(path) == parts
    assert normalize_path(path) == "/" + "/".join(parts)


@pytest.mark.parametrize(("path", "words"), [
    ("/a/\x00b", "NUL"), ("/é/\x00", "NUL"), ("/\ud800", "lone surrogate"),
    ("/a/../b", "'..'"), ("/./b", "'.'"),
    ("/" + "x" * (MAX_NAME_BYTES + 1), "longer than"),
    ("/" + "é" * (MAX_NAME_BYTES // 2 + 1), "longer than"),  # 256 bytes in 128 characters
    ("/a" * (MAX_PATH_BYTES // 2 + 1), "bytes long"),
    ("/" + "é/" * (MAX_PATH_BYTES // 3 + 1), "bytes long"),  # under the limit in characters
])
def test_invalid_paths_are_refused_with_what_is_wrong(path: str, words: str) -> None:
    with pytest.raises(InvalidPathError) as caught:
        split_path(path)
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_path_must_be_text() -> None:
    with pytest.raises(InvalidPathError, match="must be a string, not bytes"):
        split_path(b"/a")


def _parent_and_name_by_splitting(path: str) -> tuple[str, str]:
    parts = split_path(path)
    return ("/", "") if not parts else ("/" + "/".join(parts[:-1]), parts[-1])


def _outcome(fn: object, path: str) -> object:
    try:
        return fn(path)  # type: ignore[operator]
    except InvalidPathError as exc:
        return ("error", str(exc))


@given(st.lists(st.sampled_from(["a", "bc", ".", "..", ".x", "", "é", "\x00", "n" * 120]),
                max_size=6).map(lambda names: "/" + "/".join(names))
       | st.text(st.sampled_from("/a.\x00é"), max_size=12))
def test_parent_and_name_answers_as_splitting_the_validated_path_does(path: str) -> None:
    assert _outcome(parent_and_name, path) == _outcome(_parent_and_name_by_splitting, path)


@given(st.lists(st.sampled_from(["a", "bc", ".", "..", ".x", "", "é", "\x00", "n" * 120]),
                max_size=6).map(lambda names: "/" + "/".join(names))
       | st.text(st.sampled_from("/a.\x00é"), max_size=12))
def test_normalize_path_answers_as_joining_the_validated_names_does(path: str) -> None:
    # normalize_path gives a plainly canonical path back as it is, without splitting it.
    assert _outcome(normalize_path, path) == _outcome(
        lambda p: "/" + "/".join(split_path(p)), path)


def test_a_normalized_path_is_a_plain_str() -> None:
    class Named(str):
        pass

    assert type(normalize_path(Named("/a/b"))) is str
    with pytest.raises(InvalidPathError):
        normalize_path(b"/a")


@pytest.mark.parametrize("path, expected", [
    ("/", ("/", "")), ("/a", ("/", "a")), ("/a/b", ("/a", "b")), ("/a/.b", ("/a", ".b")),
    ("/a//b/", ("/a", "b")), ("/" + "x" * 200, ("/", "x" * 200)),
    ("/" + "/".join(["y" * 100] * 3), ("/" + "y" * 100 + "/" + "y" * 100, "y" * 100)),
])
def test_parent_and_name_of_canonical_and_other_paths(path: str, expected: tuple[str, str]) -> None:
    assert parent_and_name(path) == expected
