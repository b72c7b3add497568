"""Fixtures of the fair-use tests: the API's JSON client and member helpers."""

from __future__ import annotations

from tests.api.conftest import api  # noqa: F401  (the JSON client fixture)
