"""The API's request-shape layer: read JSON bodies and query strings, check types, nothing more.

This is the JSON counterpart of a WTForms form without validators: it answers 400 `bad_request`
(with a `fields` map of `path -> problem`) when a body is not JSON, not an object, or has a
value of the wrong JSON type, and hands the services plain Python values. Whether a name is
valid, a quantity positive or a limit respected is a business rule and is decided by the
services (422 with their own `fields`), never here.

The only bounds checked here are those that keep malformed input away from the database
driver: integers must fit a signed 64-bit column, text must be encodable as UTF-8 without NUL
characters (PostgreSQL refuses both), and the body has a size limit (`API_MAX_BODY_BYTES`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from flask import current_app, request

from app.services.errors import BadRequest, ValidationError

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

_MISSING = object()
# Other spellings of query parameters, read as the parameter itself wherever it is taken: the
# seed wrote `?clusterId=` in one place and `?cluster_id=` in another.
QUERY_ALIASES: dict[str, tuple[str, ...]] = {"cluster_id": ("clusterId",)}
# An integer written in decimal: an optional sign and at most 19 digits (int64 has 19).
_DECIMAL = re.compile(r"[+-]?[0-9]{1,19}")


class Field:
    """One expected value. `check` returns the cleaned value or records a problem in `errors`."""

    json_type = "value"

    def __init__(self, required: bool = True) -> None:
        self.required = required

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        raise NotImplementedError


class String(Field):
    json_type = "a string"

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        if not isinstance(value, str):
            errors[path] = f"must be {self.json_type}"
            return None
        problem = text_problem(value)
        if problem:
            errors[path] = problem
            return None
        return value


class Integer(Field):
    json_type = "an integer"

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        # bool is an int subclass in Python, but `true` is not a number in JSON.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            errors[path] = f"must be {self.json_type}"
            return None
        if not INT64_MIN <= value <= INT64_MAX:
            errors[path] = "is out of range"
            return None
        return value


class Id(Integer):
    """An object id: a JSON integer, or the same integer written as a decimal string ("12").

    The seed's clients send ids as strings (`"cluster_id": "1"`). A string id is read exactly
    as the integer it spells and then checked like one, so "0" and 0 get the same answer.
    """

    json_type = "an integer or a string of decimal digits"

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        if isinstance(value, str):
            digits = value.strip()
            if not _DECIMAL.fullmatch(digits):
                errors[path] = f"must be {self.json_type}"
                return None
            value = int(digits)
        return super().check(value, path, errors)


class Boolean(Field):
    json_type = "true or false"

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        if not isinstance(value, bool):
            errors[path] = f"must be {self.json_type}"
            return None
        return value


class Quantities(Field):
    """An object of resource kind -> quantity, each a JSON number or a numeric string.

    The values are passed through untouched: `app.quantities` (called by the services) parses
    `" 1"`, `0.5`, `"500m"` or `"2Gi"` and reports values it cannot read.
    """

    json_type = "an object of resource kind to quantity"

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        if not isinstance(value, dict):
            errors[path] = f'must be {self.json_type}, such as {{"cpu": 2}}'
            return None
        cleaned: dict[str, int | float | str | None] = {}
        for kind, amount in value.items():
            where = f"{path}.{kind}"
            problem = text_problem(kind)
            if problem:
                errors[path] = f"resource kinds {problem}"
                continue
            if amount is None:
                cleaned[kind] = None  # "none of this kind", as a blank form field
                continue
            if isinstance(amount, bool) or not isinstance(amount, int | float | str):
                errors[where] = "must be a number or a numeric string"
                continue
            if isinstance(amount, str) and text_problem(amount):
                errors[where] = text_problem(amount) or ""
                continue
            cleaned[kind] = amount
        return cleaned


class NumberOrString(Field):
    """A JSON number or a numeric string, passed through for the service to read (such as a
    percent given as 2, 0.5 or "1.25")."""

    json_type = "a number or a numeric string"

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        if isinstance(value, str):
            return String().check(value, path, errors)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and value != value:  # NaN never reaches here from JSON
                errors[path] = f"must be {self.json_type}"
                return None
            return value
        errors[path] = f"must be {self.json_type}"
        return None


class IntegerOrString(Field):
    """An integer or a word, such as a priority given as 800 or as "high"."""

    json_type = "an integer or a string"

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        if isinstance(value, str):
            return String().check(value, path, errors)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return Integer().check(value, path, errors)
        errors[path] = f"must be {self.json_type}"
        return None


class Raw(Field):
    """Any JSON value, passed to the service as is: the service validates it and names the
    problem (ports, env and command have rules only `services.container_spec` knows)."""

    json_type = "any value"

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        return value


class Object(Field):
    """A JSON object with known keys; an unknown key is refused so typos do not pass silently."""

    json_type = "an object"

    def __init__(self, fields: Mapping[str, Field], required: bool = True) -> None:
        super().__init__(required)
        self.fields = dict(fields)

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        if not isinstance(value, dict):
            errors[path or "body"] = f"must be {self.json_type}"
            return None
        cleaned: dict[str, Any] = {}
        for key in value:
            if key not in self.fields:
                errors[_join(path, key)] = "is not a known field"
        for key, field in self.fields.items():
            where = _join(path, key)
            raw = value.get(key, _MISSING)
            # null is accepted as "not given" for optional fields, as many clients send it.
            if raw is _MISSING or (raw is None and not field.required):
                if field.required:
                    errors[where] = "is required"
                continue
            cleaned[key] = field.check(raw, where, errors)
        return cleaned


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as text, if it cannot."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:20]} is too large")
    return number


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json() -> Any:
    """The request body as JSON, or BadRequest. Does not check the shape."""
    if not request.is_json:
        raise BadRequest(
            "Send a JSON body with the header Content-Type: application/json.",
            fields={"Content-Type": "must be application/json"},
        )
    request.max_content_length = current_app.config["API_MAX_BODY_BYTES"]
    raw = request.get_data(cache=True)  # over the limit: 413 from werkzeug
    if not raw.strip():
        raise BadRequest("The request body is empty; send a JSON object.", {"body": "is empty"})
    try:
        return json.loads(raw, parse_float=_finite_float, parse_constant=_no_constants)
    except RecursionError:
        raise BadRequest("The JSON body is nested too deeply.", {"body": "too deep"}) from None
    except ValueError as exc:  # includes UnicodeDecodeError and json.JSONDecodeError
        raise BadRequest(f"The body is not valid JSON: {exc}", {"body": "invalid JSON"}) from None


def json_body(shape: Object) -> dict[str, Any]:
    """Read the JSON body and check it against `shape`; BadRequest lists every problem."""
    return check(read_json(), shape)


def optional_json_body(shape: Object) -> dict[str, Any]:
    """Like `json_body`, but a request without a body means an empty object (no options)."""
    request.max_content_length = current_app.config["API_MAX_BODY_BYTES"]
    if not request.get_data(cache=True).strip():  # over the limit: 413 from werkzeug
        return check({}, shape)
    return json_body(shape)


def check(value: Any, shape: Object) -> dict[str, Any]:
    errors: dict[str, str] = {}
    cleaned = shape.check(value, "", errors)
    if errors:
        raise BadRequest("The request body does not have the expected shape.", errors)
    return cleaned


def query_int(
    name: str, default: int | None = None, minimum: int | None = None, maximum: int = INT64_MAX
) -> int | None:
    """An integer query parameter: 400 when it is not an integer, 422 when out of range.

    Its `QUERY_ALIASES` are read too; two spellings with different values are a 400.
    """
    raw = _query_value(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    if not _DECIMAL.fullmatch(text):
        raise BadRequest(f"Query parameter {name} must be an integer.", {name: "not an integer"})
    value = int(text)
    if minimum is not None and value < minimum:
        bound = f"at least {minimum}"
    elif value > maximum:
        bound = f"at most {maximum}"
    else:
        return value
    raise ValidationError(f"Query parameter {name} must be {bound}.", {name: f"must be {bound}"})


def _query_value(name: str) -> str | None:
    given = {
        spelling: request.args[spelling]
        for spelling in (name, *QUERY_ALIASES.get(name, ()))
        if request.args.get(spelling, "").strip()
    }
    if len({value.strip() for value in given.values()}) > 1:
        spellings = " and ".join(given)
        raise BadRequest(
            f"Query parameters {spellings} name the same thing; give one of them.",
            {
                spelling: "conflicts with " + " and ".join(set(given) - {spelling})
                for spelling in given
            },
        )
    return next(iter(given.values()), request.args.get(name))


def query_choice(name: str, choices: tuple[str, ...]) -> str | None:
    """A query parameter from a fixed set of words (a filter), or None when absent."""
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().lower()
    if value not in choices:
        raise BadRequest(
            f"Query parameter {name} must be one of: {', '.join(choices)}.",
            {name: f"must be one of {', '.join(choices)}"},
        )
    return value


def query_text(name: str) -> str | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    problem = text_problem(raw)
    if problem:
        raise BadRequest(f"Query parameter {name} {problem}.", {name: problem})
    return raw
