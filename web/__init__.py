"""The web app and JSON API of dp-sandbox (thin: it calls services).

Importing the package loads nothing of the server: ``web.client`` must import
with only httpx installed. ``create_app`` (Flask) loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from web.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from web.app import create_app

        return create_app
    raise AttributeError(f"module 'web' has no attribute {name!r}")


__all__ = ["create_app"]
