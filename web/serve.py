"""Serving the app with a production WSGI server (waitress)."""

from __future__ import annotations

from sandbox.instance import Instance


def serve_app(inst: Instance, *, host: str, port: int, threads: int = 8) -> None:
    from waitress import serve

    from web.app import create_app

    print(f"serving dp-sandbox on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        inst.start_workers()      # the workers open the current versions before the first query
        serve(create_app(inst), host=host, port=port, threads=threads, ident="dp-sandbox")
    finally:
        inst.close()
