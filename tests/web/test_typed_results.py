"""Services return frozen values, each with one JSON form: the CLI's ``--json``
and the API's ``data`` for the same object are equal, and the OpenAPI response
model of the route passes that form through unchanged."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import pytest
from cli_identity import SignedInRunner
from web_helpers import PASSWORD
from pydantic import TypeAdapter

from web_helpers import bearer, token_for

SQL = "SELECT city, COUNT(*) AS n FROM people GROUP BY city"
TEMPLATE_SQL = "SELECT COUNT(*) AS n FROM people WHERE sex = :sex"


@pytest.fixture
def world(licensed_instance, monkeypatch):
    """health with a run, a template, a query approval, a product and a data
    request; the app; tokens per role; and a CLI runner on the same home."""
    from products.service import draft_product, file_request
    from sandbox.approvals import parse_parameter_spec, propose_template, request_query, set_approval_mode
    from sandbox.audit import Actor
    from sandbox.licences import list_licences
    from sandbox.service import run_query
    from web.app import create_app

    for var in [v for v in os.environ if v.startswith("DPS_")]:
        monkeypatch.delenv(var)
    inst = licensed_instance
    run = run_query(inst, "operator1", "health", SQL, epsilon=0.5)
    propose_template(inst, "operator1", "health", title="Counts by sex", purpose="Planning", sql=TEMPLATE_SQL,
                     parameters=[parse_parameter_spec("sex:string:F|M")], epsilon_per_run=0.1, max_runs=3)
    request_query(inst, "operator1", "health", SQL, purpose="One count", epsilon=0.2)
    lic = list_licences(inst, dataset="health")[0]
    set_approval_mode(inst, Actor("owner1", "owner"), lic.id, "each", "every query is approved first")
    product = draft_product(inst, "operator1", title="Visits per clinic", run_ids=[run.run_id])
    file_request(inst, None, title="Waiting times", description="Per clinic and month", contact="a@example.org",
                 dataset="health")
    client = create_app(inst, {"TESTING": True}).test_client()
    tokens = {role: token_for(client, user) for role, user in
              {"owner": "owner1", "operator": "operator1", "admin": "admin1"}.items()}
    return {"inst": inst, "client": client, "tokens": tokens, "run": run.run_id, "product": product.id}


def cli_json(inst, *args: str):
    from sandbox.cli import main

    result = SignedInRunner(PASSWORD).invoke(main, [*args, "--json", "--home", str(inst.home)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def api_json(world, path: str, role: str | None = None, body: dict | None = None):
    headers = bearer(world["tokens"][role]) if role else {}
    r = (world["client"].post(path, json=body, headers=headers) if body is not None
         else world["client"].get(path, headers=headers))
    assert r.status_code in (200, 201), r.get_json()
    return r.get_json()["data"]


def cases(world) -> list[tuple[str, list[str], str, str | None, dict | None]]:
    run, product = world["run"], str(world["product"])
    check = {"dataset": "health", "sql": SQL, "epsilon": 0.3}
    return [
        ("list_datasets", ["dataset", "list"], "/api/v1/datasets?per_page=200", None, None),
        ("show_dataset", ["dataset", "show", "health"], "/api/v1/datasets/health", None, None),
        ("show_dataset (owner)", ["dataset", "show", "health", "--quality"], "/api/v1/datasets/health", "owner",
         None),
        ("list_licences", ["licence", "list"], "/api/v1/licences?per_page=200", "admin", None),
        ("list_users", ["user", "list"], "/api/v1/users?per_page=200", "admin", None),
        ("get_run", ["query", "show", run, "--as", "operator1"], f"/api/v1/queries/{run}", "operator", None),
        ("list_runs", ["query", "list", "--as", "operator1"], "/api/v1/queries?per_page=200", "operator", None),
        ("preview_query", ["query", "check", "--as", "operator1", "--dataset", "health", "--epsilon", "0.3", SQL],
         "/api/v1/queries/preview", "operator", check),
        ("list_templates", ["template", "list"], "/api/v1/templates?per_page=200", "admin", None),
        ("list_requests", ["approval", "list"], "/api/v1/query-requests?per_page=200", "admin", None),
        ("signing key", ["keys", "show"], "/api/v1/keys", None, None),
        ("get_product", ["product", "show", product, "--as", "operator1"], f"/api/v1/products/{product}",
         "operator", None),
        ("list_products", ["product", "list", "--as", "operator1"], "/api/v1/products?per_page=200", "operator",
         None),
        ("get_data_request", ["request", "show", "1"], "/api/v1/requests/1", None, None),
        ("list_data_requests", ["request", "list"], "/api/v1/requests?per_page=200", None, None),
    ]


def test_the_cli_and_the_api_print_the_same_json_for_the_same_object(world):
    checked = []
    for name, args, path, role, body in cases(world):
        from_cli = cli_json(world["inst"], *args)
        from_api = api_json(world, path, role, body)
        assert from_cli == from_api, name
        assert from_cli not in ([], {}, None), name        # each case has something to compare
        checked.append(name)
    assert len(checked) == 15


def test_the_register_is_the_same_apart_from_when_it_was_made(world):
    from_cli = cli_json(world["inst"], "register")
    from_api = api_json(world, "/api/v1/register")
    assert from_cli.pop("generated_at") and from_api.pop("generated_at")
    assert from_cli == from_api and from_cli["templates"] == []


def test_the_response_models_pass_each_json_form_through_unchanged(world):
    """What a route's OpenAPI response model says is what the service's value holds:
    validating the JSON form and dumping it again changes nothing."""
    from web.api import api

    ops = {(op.method, op.rule): op for op in api.operations}
    for name, _args, path, role, body in cases(world):
        rule = next(rule for (method, rule) in ops if method == ("POST" if body else "GET")
                    and _matches(rule, path.split("?")[0]))
        op = ops[("POST" if body else "GET", rule)]
        data = api_json(world, path, role, body)
        adapter = TypeAdapter(list[op.response] if op.many else op.response)
        assert adapter.dump_python(adapter.validate_python(data), mode="json") == data, name


def _matches(rule: str, path: str) -> bool:
    pattern = re.sub(r"<(?:\w+:)?\w+>", "[^/]+", "/api/v1" + rule)
    return re.fullmatch(pattern, path) is not None


def test_service_values_are_frozen(world):
    from products.service import get_data_request, get_product, list_products
    from sandbox.approvals import list_requests, list_templates
    from sandbox.datasets import list_datasets, show_dataset
    from sandbox.licences import dataset_budget, list_licences
    from sandbox.preview import preview_query
    from sandbox.service import get_run, list_runs
    from sandbox.users import list_users

    inst = world["inst"]
    dataset = show_dataset(inst, "health", include_quality=True)
    values = [
        list_datasets(inst)[0], dataset, dataset.tables[0], dataset.tables[0].columns[0], dataset.versions[0],
        list_licences(inst)[0], dataset_budget(inst, "health"), dataset_budget(inst, "health").levels[0],
        list_users(inst)[0], get_run(inst, "operator1", world["run"]), list_runs(inst, "operator1")[0],
        list_templates(inst)[0], list_requests(inst)[0],
        preview_query(inst, "operator1", "health", SQL, epsilon=0.3, target=None),
        get_product(inst, "operator1", world["product"]), list_products(inst, "operator1")[0],
        get_data_request(inst, None, 1),
    ]
    for value in values:
        assert dataclasses.is_dataclass(value) and isinstance(value.to_dict(), dict), type(value).__name__
        field = dataclasses.fields(value)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, None)


def test_the_budget_gauge_reads_the_licence_levels(world):
    from sandbox.licences import dataset_budget

    gauge = dataset_budget(world["inst"], "health")
    assert [lv.level for lv in gauge.levels] == ["dataset", "licence"]
    licence = gauge.levels[1]
    assert licence.operator == "operator1" and licence.status == "active"
    assert licence.budget.spent.epsilon == pytest.approx(0.5)
    assert api_json(world, "/api/v1/datasets/health/budget", "owner") == gauge.to_dict()
