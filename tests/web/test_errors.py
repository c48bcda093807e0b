"""The error hierarchy through the JSON API: a status given to one error is the
status of the answer, an unexpected exception answers a data-free 500, and the
Python client rebuilds the classes the server raised with only httpx installed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from web_helpers import PASSWORD, bearer, start_live_server, token_for

from queries.errors import (BudgetExceeded, Conflict, ExecutionFailed, InternalError, NotFound,
                            QueryRejected, SandboxError, Span, error_from_problem)

ROOT = Path(__file__).resolve().parents[2]


def test_status_given_to_an_error_is_kept():
    assert SandboxError("no version yet", code="no_version", status=409).status == 409
    assert SandboxError("plain").status == 400
    assert Conflict("taken", status=423).status == 423 and Conflict("taken").status == 409
    error = NotFound("no dataset named 'x'", code="unknown_dataset", dataset="x")
    assert error.status == 404 and error.fields == {"dataset": "x"} and "status" not in error.to_dict()


def test_the_api_answers_with_the_status_the_error_was_given(web_instance):
    """A dataset without a version (its registration was cut short) raises
    ``SandboxError(..., status=409)`` in ``sandbox.datasets``; the answer is 409."""
    from sandbox.persistence.models import Dataset, User
    from sqlalchemy import select

    from web.app import create_app

    with web_instance.store.transaction() as s:
        owner = s.execute(select(User).where(User.name == "owner1")).scalar_one()
        s.add(Dataset(name="empty", title="Empty", owner_id=owner.id, classification="conditional",
                      privacy_unit="person_id"))
    client = create_app(web_instance, {"TESTING": True}).test_client()
    r = client.get("/api/v1/datasets/empty/mock")
    body = r.get_json()
    assert r.status_code == 409 and body["status"] == 409, body
    assert body["code"] == "no_version" and body["kind"] == "error" and body["dataset"] == "empty"
    assert r.mimetype == "application/problem+json"
    rebuilt = error_from_problem(body, r.status_code)
    assert type(rebuilt) is SandboxError and rebuilt.status == 409 and rebuilt.code == "no_version"


SECRET = "cell value 8243-secret"


@pytest.fixture
def failing_app(web_instance):
    """The app with one more route whose code fails as no rule foresaw (here:
    an exception that quotes a value)."""
    from web.app import create_app

    app = create_app(web_instance, {"TESTING": False, "PROPAGATE_EXCEPTIONS": False})

    def broken():
        raise RuntimeError(f"row {SECRET} does not fit")

    for rule, name in (("/api/v1/broken", "api_broken"), ("/broken", "page_broken")):
        app.add_url_rule(rule, name, broken)
        app.view_functions[name].allowed_roles = frozenset({"public"})
    return app


def test_an_unexpected_exception_answers_internal_error_without_its_text(failing_app, caplog):
    client = failing_app.test_client()
    r = client.get("/api/v1/broken")
    body = r.get_json()
    assert r.status_code == 500 and r.mimetype == "application/problem+json"
    assert body["code"] == "internal_error" and body["kind"] == "internal_error" and body["status"] == 500
    assert len(body["error_id"]) == 12 and body["error_id"] in body["detail"]
    text = r.get_data(as_text=True)
    assert SECRET not in text and "RuntimeError" not in text and "Traceback" not in text
    # the exception is in the log, under the id the answer names
    assert any(body["error_id"] in rec.getMessage() and rec.exc_info for rec in caplog.records)
    rebuilt = error_from_problem(body, r.status_code)
    assert isinstance(rebuilt, InternalError) and rebuilt.error_id == body["error_id"]
    page = client.get("/broken")
    html = page.get_data(as_text=True)
    assert page.status_code == 500 and "internal_error" in html and SECRET not in html and "Traceback" not in html
    assert client.get("/api/v1/broken").get_json()["error_id"] != body["error_id"]


def test_a_refusal_carries_its_names_as_fields(licensed_app):
    c = licensed_app.test_client()
    h = bearer(token_for(c, "operator1"))
    r = c.post("/api/v1/queries/preview", headers=h, json={"dataset": "health", "sql": "SELECT SUM(salary) FROM people"})
    body = r.get_json()
    assert r.status_code == 422 and body["kind"] == "query_rejected" and body["code"] == "unknown_column"
    assert body["column"] == "salary"
    rebuilt = error_from_problem(body, r.status_code)
    assert isinstance(rebuilt, QueryRejected) and rebuilt.fields["column"] == "salary"
    assert rebuilt.span == Span.from_offsets("SELECT SUM(salary) FROM people", 11, 17)


def test_a_budget_refusal_comes_back_with_its_figures():
    problem = {"type": "urn:dp-sandbox:problem:budget_exceeded", "title": "Conflict", "status": 409,
               "detail": "the query needs ε=7", "code": "budget_exceeded", "kind": "budget_exceeded",
               "level": "licence", "requested": {"epsilon": 7.0, "delta": 0.0},
               "remaining": {"epsilon": 5.0, "delta": 1e-6, "difference": {"epsilon": 2.0, "delta": 0.0}}}
    error = error_from_problem(problem, 409)
    assert isinstance(error, BudgetExceeded) and error.level == "licence"
    assert error.requested["epsilon"] == 7.0 and error.remaining["difference"]["epsilon"] == 2.0
    assert str(error) == "the query needs ε=7"


# the server's packages: none of them may be needed to import and use the client
SERVER_PACKAGES = ("flask", "werkzeug", "jinja2", "click", "sqlalchemy", "alembic", "sqlglot", "duckdb", "opendp",
                   "polars", "pyarrow", "numpy", "pydantic", "cryptography", "argon2", "waitress")

CLIENT_SCRIPT = textwrap.dedent("""
    import importlib.abc, json, sys

    BLOCKED = set(sys.argv[2].split(","))

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the client must not need it")
            return None

    sys.meta_path.insert(0, Blocked())
    for name in BLOCKED:
        sys.modules[name] = None

    from queries.errors import Forbidden, QueryRejected, Unauthorized
    from web.client import SandboxClient, SandboxError

    seen = {}
    try:
        SandboxClient.login(sys.argv[1], "operator1", "not the password")
    except Unauthorized as err:
        seen["login"] = [type(err).__name__, err.status, err.code]
    with SandboxClient.login(sys.argv[1], "operator1", sys.argv[3]) as op:
        try:
            op.preview("health", "SELECT person_id FROM people")
        except QueryRejected as err:
            seen["preview"] = [type(err).__name__, err.status, err.code, err.span.start, err.fields.get("column")]
    with SandboxClient.login(sys.argv[1], "reviewer1", sys.argv[3]) as rev:
        try:
            rev.preview("health", "SELECT COUNT(*) FROM people")
        except Forbidden as err:
            seen["role"] = [type(err).__name__, err.status, err.code, isinstance(err, SandboxError)]
    seen["loaded"] = sorted(m for m in BLOCKED if sys.modules.get(m) is not None)
    print(json.dumps(seen))
""")


def test_the_client_imports_and_raises_the_server_classes_with_only_httpx(licensed_app):
    server = start_live_server(licensed_app)
    try:
        out = subprocess.run([sys.executable, "-c", CLIENT_SCRIPT, server.url, ",".join(SERVER_PACKAGES), PASSWORD],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
    finally:
        server.stop()
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["login"] == ["Unauthorized", 401, "bad_credentials"]
    assert seen["preview"] == ["QueryRejected", 422, "identifier_in_output", 7, "person_id"]
    assert seen["role"] == ["Forbidden", 403, "wrong_role", True]
    assert seen["loaded"] == []


def test_the_blocker_would_catch_a_server_import():
    """The subprocess's blocker is real: importing the app under it fails."""
    script = CLIENT_SCRIPT.split("from queries.errors")[0] + "import web.app\n"
    out = subprocess.run([sys.executable, "-c", script, "", ",".join(SERVER_PACKAGES), ""],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode != 0 and "flask" in out.stderr



def test_errors_defined_outside_the_hierarchy_come_back_as_their_nearest_shared_class():
    from queries.errors import InvalidInput, RateLimited
    from sandbox.execution.worker import QueryInvalid
    from web.auth import CsrfFailed, TooManyAttempts

    for error, klass in ((TooManyAttempts("too many failed logins", retry_after=30), RateLimited),
                         (CsrfFailed("the form's security token is missing"), InvalidInput),
                         (QueryInvalid("abc123"), ExecutionFailed)):
        fields = {k: v for k, v in error.to_dict().items() if k not in ("code", "message")}
        problem = {"detail": error.message, "code": error.code, "kind": error.kind, **fields}
        rebuilt = error_from_problem(problem, error.status)
        assert type(rebuilt) is klass and rebuilt.code == error.code and rebuilt.status == error.status
        assert rebuilt.fields == fields and str(rebuilt) == error.message
