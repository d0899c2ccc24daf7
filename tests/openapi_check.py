"""Responses checked against openapi.yaml: the status is one the operation lists, the headers
it declares are there, and the body is valid against its schema (JSON Schema 2020-12, the
spec itself being the resource every `$ref` resolves in).

`SpecCheckingClient` is a Flask test client that checks every response it returns, so every
test that uses the `client` fixture also proves the spec right.
"""

import functools
import json
import re
from pathlib import Path

import yaml
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
SPEC_URI = "urn:eqeqo-auth:openapi"
# The spec's description says these may answer any path, so operations do not list them.
ANY_PATH = {405: "method_not_allowed", 500: "internal_error"}


def load_spec():
    """openapi.yaml as a dict."""
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def pointer(*parts):
    """A JSON pointer (RFC 6901) to `parts`."""
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def path_pattern(template):
    """`/users/{id}/lock` as a regex matching one concrete path."""
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")


class Contract:
    """The spec, ready to tell what is wrong with a response."""

    def __init__(self, document):
        self.document = document
        self.registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(document))
        # Literal paths first, so that a template never shadows one.
        templates = sorted(document["paths"], key=lambda template: template.count("{"))
        self.routes = [(path_pattern(template), template) for template in templates]
        self.validators = {}

    def validator(self, at):
        """A validator of the schema at JSON pointer `at` in the spec."""
        if at not in self.validators:
            self.validators[at] = Draft202012Validator(
                {"$ref": f"{SPEC_URI}#{at}"}, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
        return self.validators[at]

    def resolve(self, at):
        """The object at `at`, following `$ref`s within the spec; returns (pointer, object)."""
        node = self.document
        for part in at.lstrip("/").split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            node = node[int(key)] if isinstance(node, list) else node[key]
        if "$ref" in node:
            return self.resolve(node["$ref"].removeprefix("#"))
        return at, node

    def find(self, path):
        """The spec's path template that `path` matches, or None."""
        return next((template for pattern, template in self.routes if pattern.match(path)), None)

    def problems(self, method, path, status, headers, body):
        """What is wrong with a response to `method path`; an empty list when it conforms.

        `headers` is a case-insensitive mapping, `body` the raw bytes.
        """
        method = method.lower()
        # HEAD is GET without a body; Flask answers both it and OPTIONS by itself.
        verb = "get" if method == "head" else method
        template = self.find(path)
        operation = self.document["paths"][template].get(verb) if template else None
        if method == "options" or operation is None or status in ANY_PATH:
            found = [] if "X-Request-ID" in headers else ["X-Request-ID header is missing"]
            if method != "options":
                found += self.error_problems(template, method, status, body)
            return [f"{method.upper()} {path} {status}: {problem}" for problem in found]
        responses = operation["responses"]
        key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
        if key not in responses:
            listed = ", ".join(responses)
            return [f"{method.upper()} {template} answered {status}, which the spec does not list ({listed})"]
        at, response = self.resolve(pointer("paths", template, verb, "responses", key))
        found = self.header_problems(at, response, headers)
        if method != "head":
            found += self.body_problems(at, response, headers, body)
        return [f"{method.upper()} {template} {status}: {problem}" for problem in found]

    def error_problems(self, template, method, status, body):
        """A status no operation lists: an unknown path (404), a method the path has not (404/405), or a 500."""
        expected = ANY_PATH.get(status, "not_found")
        if status not in ANY_PATH and status != 404:
            return ["the spec has no such operation, so only 404, 405 or 500 may answer it"]
        if method == "head":
            return []
        document = parse_json(body)
        if not isinstance(document, dict) or document.get("error") != expected:
            return [f"the body should be an error {expected!r}, got {body[:200]!r}"]
        return schema_errors(self.validator(pointer("components", "schemas", "Error")), document)

    def header_problems(self, at, response, headers):
        """Every header the response declares required is present and valid against its schema."""
        found = []
        for name in response.get("headers", {}):
            header_at, header = self.resolve(at + pointer("headers", name))
            if name not in headers:
                if header.get("required"):
                    found.append(f"header {name} is missing")
                continue
            value = headers[name]
            if header["schema"].get("type") == "integer":
                if not re.fullmatch(r"-?[0-9]+", value):
                    found.append(f"header {name}: {value!r} is not an integer")
                    continue
                value = int(value)
            found += [
                f"header {name}: {error}" for error in schema_errors(self.validator(header_at + "/schema"), value)
            ]
        return found

    def body_problems(self, at, response, headers, body):
        """The body has the declared media type and is valid against its schema; no content, no body."""
        content = response.get("content")
        if not content:
            return [f"the spec declares no body, got {body[:200]!r}"] if body else []
        media_type = headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in content:
            return [f"content type {media_type!r} is not one of {sorted(content)}"]
        if "schema" not in content[media_type]:
            return []
        if media_type == "application/json":
            document = parse_json(body)
            if document is NOT_JSON:
                return [f"the body is not JSON: {body[:200]!r}"]
        else:
            document = body.decode("utf-8", errors="replace")
        schema_at = at + pointer("content", media_type, "schema")
        return schema_errors(self.validator(schema_at), document)


NOT_JSON = object()


def parse_json(body):
    try:
        return json.loads(body)
    except ValueError:
        return NOT_JSON


def schema_errors(validator, instance):
    """Readable messages for every way `instance` fails `validator`."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in sorted(validator.iter_errors(instance), key=lambda error: list(map(str, error.absolute_path)))
    ]


@functools.cache
def contract():
    """The contract of openapi.yaml, loaded once per test session."""
    return Contract(load_spec())


def check_response(response):
    """Raise AssertionError naming each way a Flask test response breaks the spec."""
    request = response.request
    problems = contract().problems(
        request.method, request.path, response.status_code, response.headers, response.get_data()
    )
    if problems:
        raise AssertionError(
            f"{request.method} {request.full_path.rstrip('?')} -> {response.status_code} breaks openapi.yaml:\n  "
            + "\n  ".join(problems)
        )


class SpecCheckingClient(FlaskClient):
    """Flask's test client, checking every response against openapi.yaml before returning it."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        check_response(response)
        return response
