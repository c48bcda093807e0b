"""The one JSON form of the values services return.

Services return frozen dataclasses (``LicenceView``, ``DatasetView``, ``RunView``,
``ProductDetail``, …), each with a ``to_dict()`` that is its JSON form: the field
names and nesting the API answers with and the CLI prints with ``--json``. Both
edges serialise through :func:`json_form`, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class HasJsonForm(Protocol):
    """A value with one JSON form."""

    def to_dict(self) -> Any: ...


def json_form(value: Any) -> Any:
    """``value`` as JSON-ready data: a value's ``to_dict()``, mappings, lists and
    tuples element by element, and anything else (str, numbers, None) as it is."""
    if isinstance(value, HasJsonForm) and not isinstance(value, type):
        return json_form(value.to_dict())
    if isinstance(value, Mapping):
        return {k: json_form(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_form(v) for v in value]
    return value
