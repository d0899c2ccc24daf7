"""How every answer leaves this service, whether Flask or web/hot_path.py writes it.

One JSON encoding (orjson: several times faster than the standard library's json; keys in
the order given, timestamps as ISO 8601 with their offset, the contract's format; a newline
at the end, as Flask writes it), and the headers every answer carries.
"""

import datetime
import json

import orjson
from werkzeug.http import HTTP_STATUS_CODES

# Nothing here may be cached or sniffed as something other than what it says it is.
SECURITY_HEADERS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"))


def dumps(value):
    """`value` as JSON text (bytes)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # orjson refuses integers past 64 bits, which JSON allows: the standard library writes
        # them, in the same compact form.
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_timestamp).encode()


def _timestamp(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_bytes(value):
    """`value` as the body of a JSON answer."""
    return dumps(value) + b"\n"


def status_line(status):
    """The status line of `status` as Flask writes it, e.g. "401 UNAUTHORIZED"."""
    return f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}"
