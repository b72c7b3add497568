"""Parsing and formatting of resource quantities (app/quantities.py), without an app.

Base units: cpu millicores, ram MiB, gpu and custom kinds whole units.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.quantities import (
    MAX_BASE_UNITS,
    QuantityError,
    format_amount,
    format_number,
    parse,
    parse_requests,
    percent,
    to_display,
    unit_label,
    validate_kind,
)


@pytest.mark.parametrize(
    ("kind", "value", "base"),
    [
        ("cpu", 1, 1000),
        ("cpu", "1", 1000),
        ("cpu", " 1", 1000),
        ("cpu", "1 ", 1000),
        ("cpu", "\t2\n", 2000),
        ("cpu", 0.1, 100),
        ("cpu", "0.1", 100),
        ("cpu", ".5", 500),
        ("cpu", "1.", 1000),
        ("cpu", "0.001", 1),
        ("cpu", "500m", 500),
        ("cpu", " 1500m ", 1500),
        ("cpu", "2.0m", 2),
        ("cpu", 2.5, 2500),
        ("ram", 1, 1024),
        ("ram", "1.5", 1536),
        ("ram", "512Mi", 512),
        ("ram", "512mi", 512),
        ("ram", "2Gi", 2048),
        ("ram", "1Ti", 1024 * 1024),
        ("ram", "0.5", 512),
        ("ram", "0.0005", 1),  # rounds to the nearest MiB
        ("gpu", 2, 2),
        ("gpu", " 1", 1),
        ("gpu", "3.0", 3),
        ("tpu", "8", 8),
        ("disk_gb", 100, 100),
        ("gpu", MAX_BASE_UNITS, MAX_BASE_UNITS),
    ],
)
def test_parse_reads_numbers_and_strings_into_base_units(kind, value, base):
    assert parse(kind, value) == base


@pytest.mark.parametrize(
    ("kind", "value", "words"),
    [
        ("cpu", 0, "greater than zero"),
        ("cpu", "0", "greater than zero"),
        ("cpu", "0m", "greater than zero"),
        ("cpu", -1, "greater than zero"),
        ("cpu", "-1", "greater than zero"),
        ("cpu", " -0.5", "greater than zero"),
        ("cpu", "abc", "not a number"),
        ("cpu", "1,5", "not a number"),
        ("cpu", "1e3", "not a number"),
        ("cpu", "0x10", "not a number"),
        ("cpu", "\u0661", "not a number"),  # an Arabic-Indic digit one
        ("cpu", "", "empty"),
        ("cpu", "   ", "empty"),
        ("cpu", None, "number or a string"),
        ("cpu", [1], "number or a string"),
        ("cpu", True, "boolean"),
        ("cpu", float("nan"), "finite"),
        ("cpu", float("inf"), "finite"),
        ("cpu", "0.0001", "0.001"),
        ("cpu", "1.5m", "0.001"),
        ("cpu", "2k", "unknown unit"),
        ("cpu", "500M", "unknown unit"),  # mega elsewhere, never milli
        ("cpu", "1" * 33, "too long"),
        ("cpu", str(MAX_BASE_UNITS), "too large"),
        ("ram", "4Pi", "unknown unit"),
        ("ram", "4GB", "unknown unit"),
        ("ram", "0.0001", "greater than zero"),  # less than half a MiB
        ("gpu", "1.5", "whole number"),
        ("gpu", "2m", "unknown unit"),
        ("gpu", MAX_BASE_UNITS + 1, "too large"),
        ("gpu", 10**30, "too large"),
        ("tpu", "1Gi", "unknown unit"),
    ],
)
def test_parse_rejects_bad_quantities_with_a_clear_message(kind, value, words):
    with pytest.raises(QuantityError) as caught:
        parse(kind, value)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "kind"), [("tpu", "tpu"), (" TPU ", "tpu"), ("disk_gb", "disk_gb")]
)
def test_validate_kind_normalizes(raw, kind):
    assert validate_kind(raw) == kind


@pytest.mark.parametrize("raw", ["", "1tpu", "t-pu", "t pu", "a" * 33, "é", None, 3])
def test_validate_kind_rejects_bad_names(raw):
    with pytest.raises(QuantityError):
        validate_kind(raw)


def test_parse_requests_collects_amounts_and_errors_by_key():
    amounts, errors = parse_requests({"cpu": "500m", "gpu": "x", "Bad!": 1, "CPU": 1, "tpu": 2})
    assert amounts == {"cpu": 500, "tpu": 2}
    assert set(errors) == {"gpu", "Bad!", "CPU"}
    assert "given twice" in errors["CPU"]


@pytest.mark.parametrize(
    ("kind", "base", "text", "number"),
    [
        ("cpu", 1000, "1 core", "1"),
        ("cpu", 4000, "4 cores", "4"),
        ("cpu", 500, "500m cpu", "0.5"),
        ("cpu", 1500, "1.5 cores", "1.5"),
        ("cpu", 0, "0 cores", "0"),
        ("ram", 1024, "1 GiB", "1"),
        ("ram", 512, "512 MiB", "0.5"),
        ("ram", 1536, "1.5 GiB", "1.5"),
        ("ram", 21, "21 MiB", "0.0205"),
        ("gpu", 2, "2 gpu", "2"),
        ("tpu", 8, "8 tpu", "8"),
    ],
)
def test_formatting(kind, base, text, number):
    assert format_amount(kind, base) == text
    assert format_number(kind, base) == number


# No deadline: a loaded machine may pause any one example past Hypothesis's default 200 ms.
@pytest.mark.parametrize("kind", ["cpu", "ram", "gpu", "tpu"])
@settings(deadline=None)
@given(base=st.integers(min_value=1, max_value=MAX_BASE_UNITS))
def test_format_number_reads_back_exactly(kind, base):
    """A value shown in a form and submitted again is the same value."""
    assert parse(kind, format_number(kind, base)) == base


@settings(deadline=None)
@given(base=st.integers(min_value=1, max_value=10**9))
def test_display_numbers_match_the_base_units(base):
    assert to_display("cpu", base) * 1000 == pytest.approx(base)
    assert to_display("gpu", base) == base
    assert Decimal(str(to_display("ram", base))) * 1024 == pytest.approx(base, abs=0.001)


def test_unit_labels():
    assert (unit_label("cpu"), unit_label("ram"), unit_label("tpu")) == ("cores", "GiB", "tpu")


@pytest.mark.parametrize(
    ("used", "capacity", "expected"),
    [
        (0, 10, 0.0),
        (5, 10, 50.0),
        (10, 10, 100.0),
        (9999, 10000, 99.9),  # never claims full when it is not
        (1, 100000, 0.1),  # never claims empty when it is not
        (1, 3, 33.3),
        (0, 0, 0.0),
    ],
)
def test_percent(used, capacity, expected):
    assert percent(used, capacity) == expected


def test_a_thousand_tenths_add_up_exactly():
    """Integers in base units: no floating point drift (the database round trip is in
    tests/clusters/test_clusters_service.py)."""
    tenth = parse("cpu", "0.1")
    total = 0
    for _ in range(1000):
        total += tenth
    assert total == parse("cpu", 100)
    for _ in range(1000):
        total -= tenth
    assert total == 0
