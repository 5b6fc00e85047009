"""The SDK decodes the hub's JSON answers with orjson, and with the standard library what
orjson refuses: the same values either way, and ``ValueError`` for what is not JSON."""

from __future__ import annotations

import json

import pytest

from lucidlink.aio.transport import decode_json

pytestmark = pytest.mark.asyncio

SAMPLES = [
    json.dumps({"entries": [{"id": 3, "name": "é ✓", "size": 4096, "mtime": 1796066311134667992}],
                "cursor": None}, ensure_ascii=False),
    json.dumps([1, 2.5, True, False, None, "", "\u0000"]),
    json.dumps({"big": 2 ** 70, "negative": -(2 ** 65)}),  # beyond 64 bits: the standard library's
    '{"dup": 1, "dup": 2}',  # the last one wins, in both readers
]


@pytest.mark.parametrize("text", SAMPLES)
async def test_answers_decode_as_the_standard_library_does(text: str) -> None:
    raw = text.encode()
    for form in (raw, bytearray(raw), memoryview(raw)):
        assert decode_json(form) == json.loads(raw)


@pytest.mark.parametrize("raw", [b"{", b"nope", b'{"a": }', b"\xff\xfe"])
async def test_what_is_not_json_raises_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_json(raw)
