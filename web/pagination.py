"""Pagination of the lists on the pages: a template slices any list with
``paginate(rows)`` and shows ``_pager.html`` under it. ``?page=N`` picks the page
(``?per_page=N``, 1 to 200, its size); a list with two tables on one page names
its own parameter (``paginate(products, "products_page")``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

from flask import request

from queries.errors import InvalidInput

PER_PAGE = 25
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int
    pages: int
    total: int
    per_page: int
    param: str

    @property
    def first(self) -> int:
        """Position (from 1) of the first item shown; 0 for an empty list."""
        return (self.number - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0

    def url(self, number: int) -> str:
        args = request.args.to_dict(flat=True)
        args.pop("lang", None)
        args[self.param] = str(number)
        from urllib.parse import urlencode

        return f"{request.path}?{urlencode(args)}"


def _positive(name: str, default: int, most: int | None = None) -> int:
    text = request.args.get(name)
    if text is None or text == "":
        return default
    if not text.isdecimal() or int(text) < 1 or (most is not None and int(text) > most):
        most_text = f" of at most {most}" if most is not None else ""
        raise InvalidInput(f"'{name}' must be a whole number from 1{most_text}", code="bad_page", field=name)
    return int(text)


def paginate(rows: Sequence[Any], param: str = "page") -> Page:
    """The page of ``rows`` that the request asks for; past the end, the last page."""
    rows = list(rows)
    per_page = _positive("per_page", PER_PAGE, MAX_PER_PAGE)
    pages = max(1, -(-len(rows) // per_page))
    number = min(_positive(param, 1), pages)
    start = (number - 1) * per_page
    return Page(rows[start:start + per_page], number, pages, len(rows), per_page, param)
