"""Request bodies are parsed with orjson, and answers written with it, for speed: on hostile input
the result must be exactly what the standard library's json gave, so no answer changes."""

import datetime
import json

import pytest

from web import answers
from web.validation import MAX_JSON_DEPTH, parse_json


def reference(raw):
    """What the service did before orjson: the standard library, no NaN or Infinity, bounded depth."""

    def refuse(name):
        raise ValueError(f"{name} is not valid JSON")

    value = json.loads(raw.decode("utf-8"), parse_constant=refuse)

    def depth(node, level=0):
        if level > MAX_JSON_DEPTH:
            raise ValueError("nested too deeply")
        for child in node.values() if isinstance(node, dict) else node if isinstance(node, list) else ():
            depth(child, level + 1)

    depth(value)
    return value


def outcome(parse, raw):
    """The value with every type spelled out (1 and 1.0 and True are equal in Python), or the
    kind of error."""
    try:
        value = parse(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "refused"

    def typed(node):
        if isinstance(node, dict):
            return ("dict", [(key, typed(child)) for key, child in node.items()])
        if isinstance(node, list):
            return ("list", [typed(child) for child in node])
        return (type(node).__name__, repr(node))

    return typed(value)


HOSTILE = {
    "NaN": b'{"a": NaN}',
    "Infinity": b'{"a": Infinity}',
    "-Infinity": b'{"a": -Infinity}',
    "integer past 64 bits": b'{"a": 123456789012345678901234567890}',
    "integer at 64 bits": b'{"a": 18446744073709551615, "b": -9223372036854775808}',
    "negative past 64 bits": b'{"a": -99999999999999999999}',
    "float overflow": b'{"a": 1e400}',
    "float": b'{"a": 1.0, "b": -0.0, "c": 1E2}',
    "lone high surrogate": b'{"a": "\\ud800"}',
    "lone low surrogate": b'{"a": "x\\udc00y"}',
    "surrogate pair": b'{"a": "\\ud83d\\ude00"}',
    "escaped NUL": b'{"a": "\\u0000"}',
    "duplicate keys": b'{"a": 1, "a": 2}',
    "duplicate keys, nested": b'{"a": {"b": 1}, "a": {"c": 2}}',
    "nested to the limit": b'{"a": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}",
    "nested past the limit": b'{"a": ' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"}",
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "byte order mark": b'\xef\xbb\xbf{"a": 1}',
    "invalid UTF-8": b'{"a": "\xff"}',
    "overlong UTF-8": b'{"a": "\xc0\xaf"}',
    "encoded surrogate": b'{"a": "\xed\xa0\x80"}',
    "trailing comma": b'{"a": 1,}',
    "trailing data": b'{"a": 1} x',
    "two documents": b'{"a": 1}{"b": 2}',
    "single quotes": b"{'a': 1}",
    "control character in a string": b'{"a": "x\x01y"}',
    "whitespace everywhere": b' \n\t{ "a" :\r\n1 } \n',
    "empty": b"",
    "only whitespace": b"   ",
    "big string of escapes": b'{"a": "' + b"\\u00e9" * 5000 + b'"}',
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_parse_as_the_standard_library_parses_them(name):
    raw = HOSTILE[name]
    assert outcome(parse_json, raw) == outcome(reference, raw)


def test_the_answers_to_hostile_check_token_bodies_are_the_contracts(client):
    sent = {
        "NaN": (b'{"token": "x", "service_id": NaN}', 400, "invalid_json"),
        "integer past 64 bits": (b'{"token": "x", "service_id": 123456789012345678901234567890}', 400, None),
        "float id": (b'{"token": "x", "service_id": 1.0}', 400, None),
        "lone surrogate": (b'{"token": "\\ud800", "service_id": "stock"}', 400, None),
        "nested past the limit": (HOSTILE["nested past the limit"], 400, "invalid_json"),
        "duplicate keys": (b'{"token": ["x"], "token": "' + b"0" * 64 + b'", "service_id": "stock"}', 401, None),
    }
    for name, (raw, status, code) in sent.items():
        response = client.post("/check-token", data=raw, content_type="application/json")
        body = response.get_json()
        assert response.status_code == status, name
        assert body["error"] == (code or {400: "validation_error", 401: "invalid_token"}[status]), name


@pytest.mark.parametrize(
    "value",
    [
        {"big": 2**70, "small": -(2**63)},
        {"text": "é ü \u2028 \U0001f600", "nul": "\x00", "quote": '"\\'},
        {"when": datetime.datetime(2026, 12, 4, 18, 30, 5, 120000, tzinfo=datetime.UTC)},
        {"nested": [[{"a": None, "b": True, "c": 1.5}]]},
    ],
    ids=["integers past 64 bits", "text", "timestamp", "nested"],
)
def test_answers_are_the_json_the_standard_library_reads_back(value):
    written = answers.json_bytes(value)
    assert written.endswith(b"\n") and b"\n" not in written[:-1]
    expected = {key: item.isoformat() if isinstance(item, datetime.datetime) else item for key, item in value.items()}
    assert json.loads(written) == expected
