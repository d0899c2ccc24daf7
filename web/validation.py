"""Reading request input: the JSON body and query parameters, checked field by field.

Every failure is a 4xx ApiError before any query runs, so bad input never writes.
"""

import copy
import json
import re

import orjson
from email_validator import EmailNotValidError, validate_email
from flask import current_app, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wsgi import get_content_length, get_input_stream

from web.errors import ApiError

BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint: larger ids cannot exist, so they are input errors
MAX_JSON_DEPTH = 32
_DECIMAL = re.compile(r"[0-9]{1,20}")


class Field:
    """A field spec: whether it must be present and whether null is allowed."""

    def __init__(self, required=True, nullable=False):
        self.required, self.nullable = required, nullable

    def check(self, value):
        """Return the clean value or raise ValueError with what is wrong."""
        raise NotImplementedError

    def optional(self):
        """The same field, not required."""
        clone = copy.copy(self)
        clone.required = False
        return clone


class Str(Field):
    """A string of bounded length; NUL characters are refused (PostgreSQL text cannot hold them)."""

    def __init__(self, min_len=1, max_len=200, pattern=None, **kw):
        super().__init__(**kw)
        self.min_len, self.max_len = min_len, max_len
        self.pattern = re.compile(pattern) if pattern else None

    def check(self, value):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        # JSON's \ud800 escapes decode to lone surrogates, which no database text can hold.
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("must be valid Unicode text (no lone surrogates)") from None
        if not self.min_len <= len(value) <= self.max_len:
            raise ValueError(f"must be {self.min_len} to {self.max_len} characters long")
        if self.pattern and not self.pattern.fullmatch(value):
            raise ValueError(f"must match {self.pattern.pattern}")
        return value


# A password as typed: any length up to the body limit. Its bounds are the policy's business
# where a password is set, and at login an over-long password is simply wrong (401).
PASSWORD = Str(max_len=1 << 20)


class Email(Str):
    """One email address, checked by email-validator and returned in its normalized form.

    Exactly one address: no display name, no list, no comments.
    """

    def __init__(self, **kw):
        super().__init__(max_len=254, **kw)

    def check(self, value):
        value = super().check(value)
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as error:
            raise ValueError(f"must be one email address: {error}") from None


# The fields of a person. No "@" in a username: a login name with one is an email, so no
# username can pass for someone's address.
USERNAME = Str(max_len=64, pattern=r"[A-Za-z0-9._-]+")
NAME = Str(max_len=200, required=False, nullable=True)
EMAIL = Email(required=False, nullable=True)


class Int(Field):
    """A whole number within bounds (JSON number, or a decimal string when `strings` is set)."""

    def __init__(self, minimum=1, maximum=BIGINT_MAX, strings=False, **kw):
        super().__init__(**kw)
        self.minimum, self.maximum, self.strings = minimum, maximum, strings

    def check(self, value):
        if self.strings and isinstance(value, str) and _DECIMAL.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer" + (" or a decimal string" if self.strings else ""))
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"must be between {self.minimum} and {self.maximum}")
        return value


class Bool(Field):
    """true or false."""

    def check(self, value):
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value


class IdOrName(Field):
    """A numeric id (int or decimal string) or a name; returns ("id", n) or ("name", s)."""

    ID, NAME = Int(strings=True), Str(max_len=63)

    def check(self, value):
        # Every check-token request names its service: a name goes straight to the name check.
        if not isinstance(value, str) or _DECIMAL.fullmatch(value):
            try:
                return ("id", self.ID.check(value))
            except ValueError:
                pass
        if isinstance(value, str):
            return ("name", self.NAME.check(value))
        raise ValueError("must be an id (integer) or a name (string)")


def service_lookup(ref):
    """A checked IdOrName as the parameters the service queries take (the other one null)."""
    kind, value = ref
    return {"service_id": value if kind == "id" else None, "service_name": value if kind == "name" else None}


def _no_constants(name):
    raise ValueError(f"{name} is not valid JSON")


def _walk(value, level=0):
    """Refuse nesting deeper than MAX_JSON_DEPTH; tell whether a number became a float."""
    if level > MAX_JSON_DEPTH:
        raise ValueError("nested too deeply")
    if isinstance(value, float):
        return True
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    floats = False
    for child in children:
        floats = _walk(child, level + 1) or floats
    return floats


def parse_json(raw):
    """The value of a JSON document, or ValueError (RecursionError) saying what is wrong.

    orjson first: it is about ten times faster than the standard library on the bodies the
    backends send. Where the two could differ, the standard library decides, so answers stay
    as they were: whatever orjson refuses (lone surrogates, integers past 64 bits, NaN, deep
    nesting, a byte order mark) and any float (orjson reads an integer past 64 bits as one).
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    else:
        if not _walk(value):
            return value
    value = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    _walk(value)
    return value


def read_body(environ):
    """The raw body of the request in `environ`: 413 past MAX_BODY_BYTES, 400 when cut short."""
    limit = current_app.config["MAX_BODY_BYTES"]
    length = get_content_length(environ)
    if length is None:
        # A chunked body has no Content-Length to refuse up front: the stream stops at the
        # limit, so a body that reaches it was longer.
        raw = get_input_stream(environ, max_content_length=limit).read()
        if len(raw) >= limit:
            raise RequestEntityTooLarge()
        return raw
    if length > limit:
        raise RequestEntityTooLarge()
    try:
        raw = environ["wsgi.input"].read(length)
    except OSError:
        raise ClientDisconnected() from None
    if len(raw) < length:
        raise ClientDisconnected()
    return raw


def read_json(environ, optional=False):
    """The body of the request in `environ` as a dict: 415 unless JSON, 400 invalid_json unless a
    JSON object.

    With `optional`, an empty body is an empty dict (for endpoints whose fields may come
    from headers or the query string instead).
    """
    raw = read_body(environ)
    if not raw:
        if optional:
            return {}
        raise ApiError(400, "invalid_json", "a JSON object body is required")
    mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if not (mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))):
        raise ApiError(415, "unsupported_media_type", "the body must be sent as Content-Type: application/json")
    try:
        body = parse_json(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body


def json_body(optional=False):
    """The Flask request's body as a dict (read_json)."""
    return read_json(request.environ, optional)


def validate(data, spec, at_least_one=False):
    """Check `data` against `spec` (name -> Field); return the clean values present.

    Unknown fields are ignored. All problems are reported at once in `fields`.
    """
    clean, problems = {}, {}
    for name, field in spec.items():
        if name not in data:
            if field.required:
                problems[name] = "is required"
            continue
        value = data[name]
        if value is None:
            if field.nullable:
                clean[name] = None
            else:
                problems[name] = "must not be null"
            continue
        try:
            clean[name] = field.check(value)
        except ValueError as error:
            problems[name] = str(error)
    if problems:
        raise ApiError(400, "validation_error", "some fields are invalid", fields=problems)
    if at_least_one and not clean:
        raise ApiError(400, "validation_error", f"give at least one of: {', '.join(spec)}")
    return clean


def body(spec, at_least_one=False):
    """Read the JSON body and validate it in one step."""
    return validate(json_body(), spec, at_least_one=at_least_one)


def query(spec):
    """Validate query parameters (strings) against `spec`; booleans and ints are converted."""
    data = {}
    for name, field in spec.items():
        if name in request.args:
            data[name] = _from_query(request.args[name], field)
    return validate(data, spec)


def _from_query(text, field):
    if isinstance(field, Bool):
        return {"true": True, "false": False}.get(text.lower(), text)
    if isinstance(field, Int) and re.fullmatch(r"-?[0-9]{1,20}", text):
        return int(text)
    return text


def page():
    """limit/offset of a list request (limit 1..1000, default 100; offset >= 0)."""
    args = query({"limit": Int(minimum=1, maximum=1000, required=False), "offset": Int(minimum=0, required=False)})
    return {"limit": args.get("limit", 100), "offset": args.get("offset", 0)}


def listing(row, paging):
    """The list shape, from a list query's one row of `total` and `items` (a JSON array)."""
    return {"items": row["items"], "total": row["total"], **paging}
