"""Flask app factory."""

from __future__ import annotations

from flask import Flask, jsonify, render_template

from queries.errors import SandboxError
from sandbox.instance import Instance


def create_app(inst: Instance) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = inst.session_secret
    app.extensions["dps"] = inst

    @app.after_request
    def security_headers(resp):
        resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp

    @app.errorhandler(SandboxError)
    def sandbox_error(exc: SandboxError):
        return jsonify({"type": "about:blank", "title": exc.code, "status": exc.status, **exc.to_dict()}), exc.status

    @app.get("/")
    def catalog():
        from sandbox.datasets import list_datasets

        return render_template("catalog.html", datasets=list_datasets(inst))

    @app.get("/api/v1/datasets")
    def api_datasets():
        from sandbox.datasets import list_datasets

        return jsonify({"data": list_datasets(inst)})

    @app.get("/.well-known/dp-sandbox/signing-key.pem")
    def signing_key():
        return inst.signer.public_pem(), 200, {"Content-Type": "application/x-pem-file"}

    return app
