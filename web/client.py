"""A small client of the dp-sandbox JSON API (httpx), for operators' and
reviewers' scripts::

    from web.client import SandboxClient

    with SandboxClient.login("http://127.0.0.1:8470", "operator1", password) as op:
        print(op.preview("health", "SELECT sex, COUNT(*) AS n FROM people GROUP BY sex"))
        run = op.run("health", "SELECT sex, COUNT(*) AS n FROM people GROUP BY sex", epsilon=0.5)
        product = op.draft("People by sex", [run["run_id"]])
        op.submit(product["id"])

Errors come back as the classes the server raised (``queries.errors``):
a refused query is a ``QueryRejected`` with its ``code`` and ``span``, a
refused charge a ``BudgetExceeded`` with its figures, and so on; every one is a
``SandboxError`` with the answer's ``status``, ``code``, message and fields::

    from queries.errors import BudgetExceeded, QueryRejected

    try:
        op.run("health", sql, epsilon=0.5)
    except QueryRejected as err:
        print(err.code, err.span, err.fields.get("column"))
    except BudgetExceeded as err:
        print(err.remaining["epsilon"])

The module needs only httpx (``pip install 'dp-sandbox[client]'``): it imports
nothing of the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from queries.errors import SandboxError, error_from_problem

__all__ = ["SandboxClient", "SandboxError"]


class SandboxClient:
    def __init__(self, base_url: str, token: str | None = None, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", headers=headers, timeout=timeout,
                                 transport=transport)
        self.token = token

    @classmethod
    def login(cls, base_url: str, user: str, password: str, *, scopes: list[str] | None = None, days: int = 1,
              transport: httpx.BaseTransport | None = None) -> SandboxClient:
        anon = cls(base_url, transport=transport)
        try:
            data = anon._call("POST", "/tokens", json={"user": user, "password": password,
                                                        "scopes": scopes or ["all"], "days": days})
        finally:
            anon.close()
        return cls(base_url, data["token"], transport=transport)

    # --- plumbing --------------------------------------------------------------------
    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        resp = self.http.request(method, path, **kw)
        if resp.status_code >= 400:
            try:
                problem = resp.json()
            except ValueError:
                problem = None
            if not isinstance(problem, dict):   # not a problem of dp-sandbox (a proxy's page, say)
                problem = {"code": "http_error", "detail": f"HTTP {resp.status_code} {resp.reason_phrase}"}
            raise error_from_problem(problem, resp.status_code)
        return resp

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        return self._send(method, path, **kw).json()["data"]

    def _all(self, path: str, **params: Any) -> list[Any]:
        items, page = [], 1
        while True:
            body = self._send("GET", path, params={**params, "page": page, "per_page": 200}).json()
            items += body["data"]
            if len(items) >= body["meta"].get("total", 0) or not body["data"]:
                return items
            page += 1

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- everyone --------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        return self._call("GET", "/me")

    def notifications(self, lang: str = "en") -> list[dict[str, Any]]:
        """The caller's notices, newest first, each with its deliveries' state."""
        return self._all("/notifications", lang=lang)

    def set_notification_address(self, email: str | None) -> dict[str, Any]:
        """Where the caller's notices are e-mailed (None stops e-mail)."""
        return self._call("PUT", "/notifications/address", json={"email": email})

    def datasets(self, **filters: Any) -> list[dict[str, Any]]:
        return self._all("/datasets", **{k: v for k, v in filters.items() if v is not None})

    def dataset(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{name}")

    def products(self, state: str | None = None) -> list[dict[str, Any]]:
        return self._all("/products", **({"state": state} if state else {}))

    def product(self, product_id: int) -> dict[str, Any]:
        return self._call("GET", f"/products/{product_id}")

    def download_product(self, product_id: int, target: Path, fmt: str = "zip") -> Path:
        resp = self._send("GET", f"/products/{product_id}/download", params={"format": fmt})
        target.write_bytes(resp.content)
        return target

    def revoke_token(self) -> None:
        if self.token:
            self._call("DELETE", f"/tokens/{self.token[:10]}")

    # --- operator --------------------------------------------------------------------
    def licences(self) -> list[dict[str, Any]]:
        return self._all("/licences")

    def budget(self, dataset: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/budget/{dataset}")

    @staticmethod
    def _query_body(dataset: str, sql: str, epsilon: float | None,
                    target: tuple[str, float] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"dataset": dataset, "sql": sql, "epsilon": epsilon}
        if target is not None:
            body["target"] = {"output": target[0], "half_width": target[1]}
        return body

    def preview(self, dataset: str, sql: str, epsilon: float | None = None, *,
                target: tuple[str, float] | None = None) -> dict[str, Any]:
        """Cost and expected accuracy; ``target=(output, half_width)`` asks for
        the smallest ε that meets an accuracy instead of an ε."""
        return self._call("POST", "/queries/preview", json=self._query_body(dataset, sql, epsilon, target))

    def run(self, dataset: str, sql: str, epsilon: float | None = None, *,
            target: tuple[str, float] | None = None) -> dict[str, Any]:
        return self._call("POST", "/queries", json=self._query_body(dataset, sql, epsilon, target))

    # --- approval modes (licences in ``templates`` or ``each`` mode) ------------------
    def propose_template(self, dataset: str, title: str, purpose: str, sql: str, parameters: list[str | dict],
                         epsilon_per_run: float, *, max_runs: int | None = None, max_epsilon: float | None = None,
                         confidential: bool = False) -> dict[str, Any]:
        return self._call("POST", "/templates", json={
            "dataset": dataset, "title": title, "purpose": purpose, "sql": sql, "parameters": parameters,
            "epsilon_per_run": epsilon_per_run, "max_runs": max_runs, "max_epsilon": max_epsilon,
            "confidential": confidential})

    def templates(self, **filters: Any) -> list[dict[str, Any]]:
        return self._all("/templates", **filters)

    def decide_template(self, template_id: int, decision: str, reason: str = "") -> dict[str, Any]:
        return self._call("POST", f"/templates/{template_id}/decision", json={"decision": decision, "reason": reason})

    def run_template(self, template_id: int, **params: Any) -> dict[str, Any]:
        return self._call("POST", f"/templates/{template_id}/runs", json={"params": params})

    # query approvals: one query submitted for approval before it runs (licences in each mode)
    def submit_approval(self, dataset: str, sql: str, purpose: str, epsilon: float) -> dict[str, Any]:
        return self._call("POST", "/approvals", json={"dataset": dataset, "sql": sql, "purpose": purpose,
                                                      "epsilon": epsilon})

    def approvals(self, **filters: Any) -> list[dict[str, Any]]:
        return self._all("/approvals", **filters)

    def decide_approval(self, approval_id: int, decision: str, reason: str = "") -> dict[str, Any]:
        return self._call("POST", f"/approvals/{approval_id}/decision",
                          json={"decision": decision, "reason": reason})

    def run_approval(self, approval_id: int) -> dict[str, Any]:
        return self._call("POST", f"/approvals/{approval_id}/run")

    # classification: a more protected class applies at once, a less protected one waits for a reviewer
    def reclassify(self, dataset: str, to: str, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{dataset}/reclassify", json={"to": to, "reason": reason})

    def classification_changes(self, **filters: Any) -> list[dict[str, Any]]:
        return self._all("/classification-changes", **{k: v for k, v in filters.items() if v is not None})

    def decide_classification_change(self, change_id: int, decision: str, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/classification-changes/{change_id}/decide",
                          json={"decision": decision, "reason": reason})

    def runs(self, dataset: str | None = None) -> list[dict[str, Any]]:
        return self._all("/queries", **({"dataset": dataset} if dataset else {}))

    def draft(self, title: str, run_ids: list[str], description: str = "", purpose: str = "") -> dict[str, Any]:
        return self._call("POST", "/products", json={"title": title, "run_ids": run_ids,
                                                      "description": description, "purpose": purpose})

    def submit(self, product_id: int, attestation: str = "I am responsible for this product and its purpose.") -> dict:
        return self._call("POST", f"/products/{product_id}/submit", json={"attestation": attestation})

    def release(self, product_id: int) -> dict[str, Any]:
        return self._call("POST", f"/products/{product_id}/release")

    # --- reviewer --------------------------------------------------------------------
    def review_queue(self) -> list[dict[str, Any]]:
        return self._all("/review-queue")

    def review(self, product_id: int, decision: str, reason: str = "") -> dict[str, Any]:
        return self._call("POST", f"/products/{product_id}/reviews", json={"decision": decision, "reason": reason})

    def approve(self, product_id: int, reason: str = "") -> dict[str, Any]:
        return self.review(product_id, "approve", reason)
