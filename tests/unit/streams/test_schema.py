"""``RawSchema``: the same events as Faust's raw schema, without its codecs; sends unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.types import Message

from streams.schema import RawSchema

app = faust.App("test-schema", broker="kafka://127.0.0.1:1")

MESSAGES = [
    (b"/posts/42", b'{"method":"GET","link":"/posts/42"}', [("h", b"v")]),
    (None, b'{"method":"GET","link":"/"}', []),
    (b"key", None, [("error", b"x")]),  # a tombstone
    (None, None, None),
    (b"", b"", []),
    (b"\x00\xff", b"\xff\xfe not json", [("a", b"1"), ("a", b"2")]),
]


def _message(key: bytes | None, value: bytes | None, headers: Any) -> Message:
    return Message(
        "footprints", 3, 17, 1_700_000_000.0, 0, headers, key, value, None,
        serialized_key_size=len(key or b""), serialized_value_size=len(value or b""),
    )  # fmt: skip


def _decode(schema: faust.Schema, message: Message) -> Any:
    return asyncio.run(schema.compile(app)(message))


@pytest.mark.parametrize(("key", "value", "headers"), MESSAGES)
def test_events_are_those_of_fausts_raw_schema(key: Any, value: Any, headers: Any) -> None:
    faust_raw = faust.Schema(key_serializer="raw", value_serializer="raw")
    message = _message(key, value, headers)
    ours, theirs = _decode(RawSchema(), message), _decode(faust_raw, message)
    assert type(ours) is type(theirs) is app.conf.Event
    assert (ours.key, ours.value, ours.headers) == (theirs.key, theirs.value, theirs.headers)
    assert (ours.key, ours.value) == (key, value)
    assert ours.message is theirs.message is message
    assert ours.app is app


def test_sending_uses_the_raw_serializers() -> None:
    schema = RawSchema()
    assert (schema.key_serializer, schema.value_serializer) == ("raw", "raw")
    topic = app.topic("t", schema=schema)
    assert (topic.key_serializer, topic.value_serializer) == ("raw", "raw")
    key, value = topic.prepare_key(b"k", None), topic.prepare_value(b"v", None)
    assert (key[0], value[0]) == (b"k", b"v")
