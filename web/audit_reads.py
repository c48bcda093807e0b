"""The audit records of reads made through the web (API and pages alike): who
downloaded what, through which surface. A read is recorded once it succeeded,
before its bytes are sent (``sandbox.audit.view`` writes the record in its own
transaction)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from sandbox.vocabulary import LoginSurface, ReadAction
from web import access
from web.auth import actor, is_api_request

P = ParamSpec("P")
R = TypeVar("R")


def surface() -> LoginSurface:
    """Where the caller is reading: the API or the pages."""
    return LoginSurface.API if is_api_request() else LoginSurface.PAGE


def record_dataset_download(dataset: str, table: str) -> None:
    """Record the download of one table of the open dataset ``dataset``."""
    from sandbox.audit.view import record_dataset_read

    record_dataset_read(access.inst(), actor(), ReadAction.DATASET_DOWNLOAD, dataset,
                        {"table": table, "surface": surface()})


def recorded_read(action: ReadAction, object_type: str, id_param: str,
                  *params: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A view helper whose successful call is recorded as ``action`` on the object
    ``object_type`` whose id is its argument ``id_param``, with the arguments
    ``params`` and the surface as the payload."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            result = fn(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values: dict[str, Any] = dict(bound.arguments)
            from sandbox.audit.view import record_read

            record_read(access.inst(), actor(), action, object_type, values[id_param],
                        {**{p: values[p] for p in params}, "surface": surface()})
            return result

        return wrapper

    return decorate
