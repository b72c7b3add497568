"""Parsing and formatting of resource quantities.

Below the blueprints every quantity is an exact integer in a base unit, so that reserving and
releasing 0.1 CPU a thousand times returns usage to exactly zero:

- ``cpu``: millicores. Written as cores (``2``, ``0.5``, precise to 0.001) or millicores (``500m``).
- ``ram``: MiB. Written as GiB (``1.5``) or with a binary suffix (``512Mi``, ``2Gi``, ``1Ti``).
  Fractions of a GiB that are not whole MiB are rounded to the nearest MiB.
- ``gpu`` and every custom kind (``tpu``, ``disk_gb``): whole units.

Input may be an int, a float or a string padded with spaces (``" 1"`` is 1). Parsing uses
`decimal.Decimal` and never floats. This module only parses and formats; it knows no database.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

STANDARD_KINDS = ("cpu", "gpu", "ram")
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# Largest amount accepted in any kind, in base units: beyond any real cluster, inside BIGINT.
MAX_BASE_UNITS = 10**12
_NUMBER = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[A-Za-z]*)$")
_RAM_SUFFIX_MIB = {"": 1024, "gi": 1024, "mi": 1, "ti": 1024 * 1024}


class QuantityError(ValueError):
    """A quantity that cannot be read; the message is fit to show next to the field."""


def unit_label(kind: str) -> str:
    """The display unit of a kind, for labels and column headings: cpu in cores, ram in GiB,
    every other kind counted in itself (gpu in gpu, tpu in tpu)."""
    return {"cpu": "cores", "ram": "GiB"}.get(kind, kind)


def validate_kind(kind: object) -> str:
    """Return a normalized kind name or raise QuantityError."""
    if not isinstance(kind, str):
        raise QuantityError("resource kind must be a name")
    name = kind.strip().lower()
    if not KIND_PATTERN.match(name):
        raise QuantityError(
            "resource kind must start with a letter and use only a-z, 0-9 and _ (at most 32)"
        )
    return name


def _decimal(kind: str, value: object) -> tuple[Decimal, str]:
    if isinstance(value, bool):
        raise QuantityError(f"{kind} must be a number, not a boolean")
    if isinstance(value, int):
        return Decimal(value), ""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QuantityError(f"{kind} must be a finite number")
        return Decimal(repr(value)), ""
    if not isinstance(value, str):
        raise QuantityError(f'{kind} must be a number or a string such as "2"')
    text = value.strip()
    if not text:
        raise QuantityError(f"{kind} is empty")
    if len(text) > 32:
        raise QuantityError(f"{kind} is too long to be a quantity")
    if text.startswith("-"):
        raise QuantityError(f"{kind} must be greater than zero")
    match = _NUMBER.match(text)
    if not match:
        raise QuantityError(f"{kind}: {text!r} is not a number")
    try:
        return Decimal(match["number"]), match["suffix"]
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
        raise QuantityError(f"{kind}: {text!r} is not a number") from exc


def parse(kind: str, value: object) -> int:
    """Parse a positive quantity of `kind` into base units; raise QuantityError otherwise."""
    number, suffix = _decimal(kind, value)
    if number < 0:
        raise QuantityError(f"{kind} must be greater than zero")
    if number > MAX_BASE_UNITS:
        # Every unit is at least one base unit, so this is too large in any unit; checked
        # before any arithmetic, which would overflow Decimal's 28 digits for huge numbers.
        raise _too_large(kind)
    if kind == "cpu":
        # Only a lowercase m: "500M" would mean mega-cores elsewhere, never read it as milli.
        if suffix not in ("", "m"):
            raise QuantityError(
                f"cpu: unknown unit {suffix!r} (use cores, or millicores like 500m)"
            )
        base = number if suffix == "m" else number * 1000
        if base != base.to_integral_value():
            raise QuantityError("cpu is precise to 0.001 cores (1m)")
    elif kind == "ram":
        if suffix.lower() not in _RAM_SUFFIX_MIB:
            raise QuantityError(f"ram: unknown unit {suffix!r} (use GiB, or 512Mi, 2Gi, 1Ti)")
        base = (number * _RAM_SUFFIX_MIB[suffix.lower()]).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
    else:
        if suffix:
            raise QuantityError(f"{kind}: unknown unit {suffix!r} ({kind} counts whole units)")
        if number != number.to_integral_value():
            raise QuantityError(f"{kind} must be a whole number")
        base = number
    if base <= 0:
        raise QuantityError(f"{kind} must be greater than zero")
    if base > MAX_BASE_UNITS:
        raise _too_large(kind)
    return int(base)


def _too_large(kind: str) -> QuantityError:
    return QuantityError(f"{kind} is too large (at most {format_amount(kind, MAX_BASE_UNITS)})")


def parse_requests(raw: dict[str, object]) -> tuple[dict[str, int], dict[str, str]]:
    """Parse a mapping of kind -> quantity. Returns (amounts, errors by kind); blank values skip."""
    amounts: dict[str, int] = {}
    errors: dict[str, str] = {}
    for key, value in raw.items():
        try:
            kind = validate_kind(key)
        except QuantityError as exc:
            errors[str(key)] = str(exc)
            continue
        if kind in amounts:
            errors[str(key)] = f"{kind} is given twice"
            continue
        try:
            amounts[kind] = parse(kind, value)
        except QuantityError as exc:
            errors[str(key)] = str(exc)
    return amounts, errors


def to_display(kind: str, base: int) -> int | float:
    """Base units to the display unit as a JSON number (cores, GiB, whole units)."""
    if kind == "cpu":
        return base // 1000 if base % 1000 == 0 else base / 1000
    if kind == "ram":
        return base // 1024 if base % 1024 == 0 else round(base / 1024, 6)
    return base


def format_amount(kind: str, base: int) -> str:
    """Human text for an amount: ``1.5 cores``, ``512 MiB``, ``3 GiB``, ``2 gpu``."""
    if kind == "cpu":
        if base % 1000 == 0:
            return f"{base // 1000} cores" if base != 1000 else "1 core"
        if base < 1000:
            return f"{base}m cpu"
        return f"{_trim(Decimal(base) / 1000)} cores"
    if kind == "ram":
        if base % 1024 == 0:
            return f"{base // 1024} GiB"
        if base < 1024:
            return f"{base} MiB"
        return f"{_gib(base)} GiB"
    return f"{base} {kind}"


def format_display(kind: str, base: int) -> str:
    """An amount as every page shows it: one unit per kind, whatever the size, so that bars,
    tables, forms and reasons agree: ``0.5 cores``, ``1 core``, ``0.5 GiB``, ``2 gpu``.

    (`format_amount` keeps millicores and MiB for small amounts; the scheduler's reason texts
    and the API's messages use it.)
    """
    number = format_number(kind, base)
    if kind == "cpu":
        return f"{number} core" if base == 1000 else f"{number} cores"
    return f"{number} {unit_label(kind)}"


def format_number(kind: str, base: int) -> str:
    """The amount in display units without the unit, for form values and tables."""
    if kind == "cpu":
        return _trim(Decimal(base) / 1000)
    if kind == "ram":
        return _gib(base)
    return str(base)


def percent(used: int, capacity: int) -> float:
    """Utilization in percent, one decimal, for bars and labels.

    Rounding never claims what is not so: 100.0 only when full, 0.0 only when unused.
    """
    if capacity <= 0:
        return 0.0
    value = round(100 * used / capacity, 1)
    if value >= 100.0 and used < capacity:
        return 99.9
    if value <= 0.0 and used > 0:
        return 0.1
    return value


def _gib(mib: int) -> str:
    """MiB as GiB text that reads back to exactly `mib`: three decimals when they suffice, else
    four (0.00005 GiB is 0.05 MiB, well inside parse's rounding to the nearest MiB)."""
    exact = Decimal(mib) / 1024
    short = exact.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    if (short * 1024).quantize(Decimal(1), rounding=ROUND_HALF_UP) != mib:
        short = exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return _trim(short)


def _trim(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
