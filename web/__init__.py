"""The web app and JSON API of dp-sandbox (thin: it calls services)."""

from web.app import create_app

__all__ = ["create_app"]
