"""The API's route registry and its OpenAPI 3.1 document.

``ApiRoutes.route`` registers a view on the API blueprint together with what
the document needs: roles, request body and query models, the response model.
The same models validate each request, so the document cannot drift from what
the server accepts. Views return data (or ``(data, meta)``); the registry wraps
it in the envelope ``{"data": ..., "meta": {...}}``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, TypeAdapter, ValidationError

from queries.errors import InvalidInput
from sandbox.views import json_form
from sandbox.vocabulary import PUBLIC, Audience
from web.auth import allow
from web.schemas import Meta, Problem

PROBLEM_TYPE = "urn:dp-sandbox:problem:"


@dataclass(frozen=True)
class ApiOperation:
    method: str
    rule: str                     # Flask rule under the blueprint prefix, e.g. /datasets/<name>
    endpoint: str
    summary: str
    roles: frozenset[str]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None          # a model, or None for no data
    many: bool = False
    status: int = 200
    media: tuple[str, ...] = ()   # non-JSON responses (downloads)
    multipart: dict[str, str] = field(default_factory=dict)   # form field -> description
    tag: str = "api"
    replaced_by: str | None = None   # for an older spelling of a route, kept for one release: the new rule


def invalid_request(exc: ValidationError, where: str) -> InvalidInput:
    errors = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
              for e in exc.errors(include_url=False, include_input=False, include_context=False)]
    first = errors[0] if errors else {"loc": [], "msg": "invalid"}
    loc = ".".join(first["loc"]) or where
    return InvalidInput(f"invalid {where}: {loc}: {first['msg']}", code="invalid_request", errors=errors)


def parse_body(model: type[BaseModel]) -> BaseModel:
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidInput("the request body must be a JSON object", code="invalid_request")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc, "body") from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    args: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        args[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(args)
    except ValidationError as exc:
        raise invalid_request(exc, "query string") from None


def envelope(data: Any, meta: dict[str, Any] | None, response: Any, many: bool, status: int) -> Response:
    data = json_form(data)      # a service's value in its one JSON form, the one the CLI prints
    if response is not None:
        adapter = TypeAdapter(list[response] if many else response)
        data = adapter.dump_python(adapter.validate_python(data), mode="json")
    resp = jsonify({"data": data, "meta": meta or {}})
    resp.status_code = status
    return resp


class ApiRoutes:
    def __init__(self, blueprint: Blueprint) -> None:
        self.blueprint = blueprint
        self.operations: list[ApiOperation] = []

    def route(self, rule: str, method: str = "GET", *, roles: tuple[Audience, ...], summary: str,
              body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
              response: Any = None, many: bool = False, status: int = 200, media: tuple[str, ...] = (),
              multipart: dict[str, str] | None = None, tag: str = "api", aliases: tuple[str, ...] = ()) -> Callable:
        """An API operation at ``rule``; each of ``aliases`` is an older spelling
        of the same operation, kept for one release and marked deprecated in the
        OpenAPI document (docs/api.md lists them)."""

        def decorate(fn: Callable) -> Callable:
            @functools.wraps(fn)
            def handler(**kwargs: Any):
                if query is not None:
                    kwargs["query"] = parse_query(query)
                if body is not None:
                    kwargs["body"] = parse_body(body)
                out = fn(**kwargs)
                if isinstance(out, Response):
                    return out
                data, meta = out if isinstance(out, tuple) else (out, None)
                return envelope(data, meta, response, many, status)

            view = allow(*roles)(handler)
            endpoint = fn.__name__
            self.blueprint.add_url_rule(rule, endpoint, view, methods=[method])
            self.operations.append(ApiOperation(method, rule, endpoint, summary, frozenset(roles), body, query,
                                                response, many, status, media, dict(multipart or {}), tag))
            for old in aliases:
                self.blueprint.add_url_rule(old, endpoint, view, methods=[method])
                self.operations.append(ApiOperation(method, old, endpoint, summary, frozenset(roles), body, query,
                                                    response, many, status, media, dict(multipart or {}), tag,
                                                    replaced_by=rule))
            return view

        return decorate


def paged(items: list[Any], query: Any) -> tuple[list[Any], dict[str, int]]:
    start = (query.page - 1) * query.per_page
    return items[start:start + query.per_page], {"page": query.page, "per_page": query.per_page,
                                                 "total": len(items)}


_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def openapi_path(rule: str) -> str:
    return _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule)


def _path_params(rule: str) -> list[dict[str, Any]]:
    out = []
    for conv, name in _CONVERTER.findall(rule):
        schema: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1} if conv == "int" else {"type": "string", "minLength": 1}
        if conv not in ("int", "path"):
            schema["pattern"] = "^[^/]+$"
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        if model.__name__ not in self.components:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                self.components.setdefault(name, sub)
            self.components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_params(model: type[BaseModel], schemas: _Schemas) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        schemas.components.setdefault(name, sub)
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()]


def openapi_document(routes: ApiRoutes, prefix: str, version: str) -> dict[str, Any]:
    schemas = _Schemas()
    problem = schemas.ref(Problem)
    meta = schemas.ref(Meta)
    paths: dict[str, Any] = {}
    for op in routes.operations:
        item: dict[str, Any] = {
            "operationId": op.endpoint, "summary": op.summary, "tags": [op.tag],
            "description": "Roles: " + ", ".join(sorted(op.roles)) + ".",
        }
        if op.replaced_by is not None:
            item.update(operationId=f"{op.endpoint}_deprecated", deprecated=True,
                        description=f"Deprecated spelling of {prefix}{openapi_path(op.replaced_by)}, kept for one "
                                    f"release. " + item["description"])
        params = _path_params(op.rule) + (_query_params(op.query, schemas) if op.query else [])
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": True, "content": {"application/json": {"schema": schemas.ref(op.body)}}}
        elif op.multipart:
            item["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["policy"],
                "properties": {name: ({"type": "array", "items": {"type": "string", "format": "binary"}}
                                      if name == "files" else {"type": "string", "format": "binary"})
                               for name in op.multipart}}}}}
        if op.media:
            ok = {"description": "the file", "content": {m: {"schema": {"type": "string", "format": "binary"}}
                                                        for m in op.media}}
        else:
            data: dict[str, Any] = schemas.ref(op.response) if op.response is not None else {"type": "null"}
            if op.many:
                data = {"type": "array", "items": data}
            ok = {"description": "success", "content": {"application/json": {"schema": {
                "type": "object", "required": ["data", "meta"],
                "properties": {"data": data, "meta": meta}}}}}
        problem_resp = {"description": "problem details", "content": {"application/problem+json": {"schema": problem}}}
        item["responses"] = {str(op.status): ok, "4XX": problem_resp, "5XX": problem_resp}
        if PUBLIC not in op.roles:
            item["security"] = [{"bearer": []}]
        paths.setdefault(prefix + openapi_path(op.rule), {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "dp-sandbox API", "version": version,
                 "description": "Authorized operation of sensitive data: datasets, licences, differentially "
                                "private queries, data products. Success: {data, meta}; errors: RFC 7807 "
                                "problem details with a stable code."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas.components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "a token from POST /api/v1/tokens"}}},
    }
