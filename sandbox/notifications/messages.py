"""The one-line text of each kind of notice, in English and Chinese, built from
its facts alone (names, numbers and states; never data values)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.notifications.vocabulary import NoticeKind

TEXT: dict[str, dict[NoticeKind, str]] = {
    "en": {
        NoticeKind.REQUEST_FILED: "Your data request {request} ({title}) was filed.",
        NoticeKind.REQUEST_ANSWERED: "Your data request {request} ({title}) is now {status}.",
        NoticeKind.REQUEST_CLOSED: "Your data request {request} ({title}) is closed: product {product} was released.",
        NoticeKind.APPROVAL_DECIDED: "Your {what} {id} on dataset {dataset} is {status}.",
        NoticeKind.PRODUCT_REVIEWED: "Your product {product} ({title}) was reviewed; it is {state}.",
        NoticeKind.PRODUCT_RELEASED: "Your product {product} ({title}) was released.",
        NoticeKind.PRODUCT_RETURNED: "Your product {product} ({title}) is {state}.",
        NoticeKind.NEW_VERSION: "Dataset {dataset} has a new version {version} (your licence {licence}).",
        NoticeKind.LICENCE_REVOKED: "Your licence {licence} on dataset {dataset} was revoked.",
        NoticeKind.LICENCE_EXPIRING: "Your licence {licence} on dataset {dataset} ends at {expires_at}.",
        NoticeKind.PRODUCT_WAITING: "Product {product} ({title}) waits for review.",
        NoticeKind.CLASSIFICATION_WAITING:
            "Dataset {dataset}: a change from {from} to {to} waits for review (request {request}).",
        NoticeKind.APPROVAL_WAITING: "A {what} ({id}) on dataset {dataset} waits for your approval.",
        NoticeKind.SHARE_NEW_VERSION: "Dataset {dataset}, shared with you under grant {grant}, has a new version {version}.",
    },
    "zh": {
        NoticeKind.REQUEST_FILED: "您的数据需求 {request}（{title}）已提交。",
        NoticeKind.REQUEST_ANSWERED: "您的数据需求 {request}（{title}）当前状态：{status}。",
        NoticeKind.REQUEST_CLOSED: "您的数据需求 {request}（{title}）已关闭：数据产品 {product} 已发布。",
        NoticeKind.APPROVAL_DECIDED: "您在数据集 {dataset} 上的{what} {id} 已处理：{status}。",
        NoticeKind.PRODUCT_REVIEWED: "您的数据产品 {product}（{title}）已被审核，当前状态：{state}。",
        NoticeKind.PRODUCT_RELEASED: "您的数据产品 {product}（{title}）已发布。",
        NoticeKind.PRODUCT_RETURNED: "您的数据产品 {product}（{title}）当前状态：{state}。",
        NoticeKind.NEW_VERSION: "数据集 {dataset} 有新版本 {version}（您的许可 {licence}）。",
        NoticeKind.LICENCE_REVOKED: "您在数据集 {dataset} 上的许可 {licence} 已被撤销。",
        NoticeKind.LICENCE_EXPIRING: "您在数据集 {dataset} 上的许可 {licence} 将于 {expires_at} 到期。",
        NoticeKind.PRODUCT_WAITING: "数据产品 {product}（{title}）等待审核。",
        NoticeKind.CLASSIFICATION_WAITING: "数据集 {dataset}：从 {from} 调整为 {to} 的分级变更等待审核（申请 {request}）。",
        NoticeKind.APPROVAL_WAITING: "数据集 {dataset} 上的{what}（{id}）等待您审批。",
        NoticeKind.SHARE_NEW_VERSION: "通过共享授权 {grant} 提供给您的数据集 {dataset} 有新版本 {version}。",
    },
}

WHAT = {"en": {"template": "query template", "query_request": "query request"},
        "zh": {"template": "查询模板", "query_request": "查询申请"}}


class _Facts(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def notice_text(kind: NoticeKind, facts: Mapping[str, Any], lang: str = "en") -> str:
    table = TEXT.get(lang, TEXT["en"])
    values = _Facts({k: ("-" if v is None else v) for k, v in facts.items()})
    if "what" in values:
        values["what"] = WHAT.get(lang, WHAT["en"]).get(str(values["what"]), values["what"])
    return table[kind].format_map(values)
