"""Pagination of API lists: `page` (0-based) and `offset` (items per page), as the seed had it.

The seed calls the page size `offset`; we keep its names so its clients work unchanged. Lists
answer `{"items", "page", "offset", "total"}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from app.blueprints.api.schema import query_int

MAX_PAGE = 100_000_000


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int
    offset: int  # items per page

    @property
    def start(self) -> int:
        """Index of the first item of the page."""
        return self.page * self.offset


def page_request() -> PageRequest:
    """Read `page` and `offset` from the query string (400 if not integers, 422 if out of range)."""
    largest = current_app.config["API_MAX_PAGE_SIZE"]
    size = query_int("offset", current_app.config["PAGE_SIZE"], minimum=1, maximum=largest)
    # Any page past the end is simply empty; the bound keeps page * offset a small integer.
    page = query_int("page", 0, minimum=0, maximum=MAX_PAGE)
    assert size is not None and page is not None
    return PageRequest(page=page, offset=size)


def page_body(items: Iterable[Any], total: int, request: PageRequest) -> dict[str, Any]:
    return {"items": list(items), "page": request.page, "offset": request.offset, "total": total}
