"""The whole story over HTTP with bearer tokens, through ``web.client`` against
a live waitress server on 127.0.0.1."""

from __future__ import annotations

import zipfile
from datetime import date, timedelta

import httpx
import pytest

from queries.errors import Forbidden, InvalidInput, QueryRejected, Unauthorized
from web.client import SandboxClient
from web_helpers import PASSWORD, start_live_server



@pytest.fixture
def live(app):
    server = start_live_server(app)
    yield server.url
    server.stop()


def test_client_errors_carry_the_code(live):
    with pytest.raises(Unauthorized) as err:
        SandboxClient.login(live, "operator1", "not the password")
    assert err.value.status == 401 and err.value.code == "bad_credentials"
    with SandboxClient.login(live, "reviewer1", PASSWORD) as rev:
        assert rev.me()["role"] == "reviewer"
        with pytest.raises(Forbidden) as err:
            rev.preview("health", "SELECT 1")
        assert err.value.code == "wrong_role"
        rev.revoke_token()
        with pytest.raises(Unauthorized) as err:
            rev.me()
        assert err.value.code == "bad_token"


def test_story_over_http(live, health_source, tmp_path):
    from products.manifest import verify_path

    folder = health_source.parent
    with SandboxClient.login(live, "owner1", PASSWORD) as owner:
        files = [("policy", ("policy.toml", health_source.read_bytes()))] + [
            ("files", (n, (folder / n).read_bytes())) for n in ("people.parquet", "visits.csv", "clinics.csv")]
        reg = owner.http.post("/datasets", files=files)
        assert reg.status_code == 201, reg.text
        assert reg.json()["data"]["row_counts"]["people"] == 500
        lic = owner.http.post("/licences", json={
            "dataset": "health", "operator": "operator1", "epsilon": 3, "delta": 1e-6, "purpose": "story",
            "expires": (date.today() + timedelta(days=5)).isoformat()})
        assert lic.status_code == 201, lic.text

    with SandboxClient.login(live, "operator1", PASSWORD) as op:
        assert [d["name"] for d in op.datasets(classification="conditional")] == ["health"]
        with pytest.raises(QueryRejected) as err:
            op.preview("health", "SELECT person_id FROM people")
        assert err.value.code == "identifier_in_output" and err.value.status == 422 and err.value.span.start == 7
        sql = "SELECT city, COUNT(*) AS people FROM people GROUP BY city"
        cost = op.preview("health", sql, epsilon=0.5)["cost"]
        assert cost["epsilon"] == pytest.approx(0.5) and cost["expected_half_width"]["people"] > 0
        run = op.run("health", sql, epsilon=0.5)
        assert len(run["rows"]) == 10 and all(iv[1] is not None for iv in run["intervals"])
        assert op.budget("health")[0]["remaining"]["epsilon"] == pytest.approx(2.5)
        product = op.draft("People per city", [run["run_id"]], description="Counts of people per city")
        op.submit(product["id"])
        pid = product["id"]

    for name in ("reviewer1", "reviewer2"):
        with SandboxClient.login(live, name, PASSWORD) as rev:
            assert pid in [p["id"] for p in rev.review_queue()]
            detail = rev.product(pid)
            assert detail["checks"], "reviewers see the automatic checks"
            rev.approve(pid, reason="checked")
    with SandboxClient.login(live, "operator1", PASSWORD) as op:
        assert op.product(pid)["state"] == "approved"
        released = op.release(pid)
        assert released["version"] == 1 and "path" not in released

    public = SandboxClient(live)
    assert [p["id"] for p in public.products()] == [pid]
    zip_path = public.download_product(pid, tmp_path / "product.zip")
    key = httpx.get(f"{live}/api/v1/keys").json()["data"]["public_key_pem"]
    report = verify_path(zip_path, key)
    assert report.ok, report.problems
    # a changed cell in a released file breaks the verification
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith(".csv"):
                data = data.replace(b"\n", b"\n9", 1)
            dst.writestr(item, data)
    assert not verify_path(tampered, key).ok
    public.close()


def test_client_template_and_request_flows(live, health_source):
    folder = health_source.parent
    with SandboxClient.login(live, "owner1", PASSWORD) as owner:
        files = [("policy", ("policy.toml", health_source.read_bytes()))] + [
            ("files", (n, (folder / n).read_bytes())) for n in ("people.parquet", "visits.csv", "clinics.csv")]
        assert owner.http.post("/datasets", files=files).status_code == 201
        lic = owner.http.post("/licences", json={
            "dataset": "health", "operator": "operator1", "epsilon": 3, "delta": 1e-6, "purpose": "templates",
            "expires": (date.today() + timedelta(days=5)).isoformat(), "approval": "templates"})
        assert lic.status_code == 201, lic.text
    sql = "SELECT COUNT(*) AS n FROM people WHERE city = :city"
    with SandboxClient.login(live, "operator1", PASSWORD) as op:
        assert op.preview("health", "SELECT COUNT(*) AS n FROM people", target=("n", 30))["cost"]["epsilon"] > 0
        with pytest.raises(Forbidden) as err:
            op.run("health", "SELECT COUNT(*) AS n FROM people", epsilon=0.1)
        assert err.value.code == "template_required"
        tid = op.propose_template("health", "People in a city", "planning", sql, ["city:string:Oslo|Bergen"], 0.1,
                                  max_runs=2)["id"]
    with SandboxClient.login(live, "owner1", PASSWORD) as owner:
        owner.decide_template(tid, "approve")
    with SandboxClient.login(live, "operator1", PASSWORD) as op:
        assert op.run_template(tid, city="Oslo")["cost"]["epsilon"] == pytest.approx(0.1)
        with pytest.raises(InvalidInput) as err:
            op.run_template(tid, city="Paris")
        assert err.value.code == "parameter_out_of_domain"
        assert "Paris" not in str(err.value) and "Paris" not in str(err.value.fields)
        assert [t["runs_used"] for t in op.templates()] == [1]
