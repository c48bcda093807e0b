"""Errors in plain Chinese, built from their stable code and structured fields.

The services raise ``SandboxError`` with an English message, a stable ``code``
and structured fields: the names of the tables, columns, functions, datasets,
parameters and settings an error is about, and budget figures
(``queries/errors.py``). On Chinese pages the English message is never parsed
or translated as free text: the code picks a Chinese sentence from
``ZH_ERRORS`` and its placeholders are filled from the fields. A sentence that
names something (``named``) is used when the error carries every field it
names; the sentence without the name otherwise.

The English original and the code stay on the page. English pages and the JSON
API show the service's English message, which the raise site builds from the
same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter
from typing import Any
from collections.abc import Mapping

from queries.errors import (BudgetExceeded, Conflict, ExecutionFailed, Forbidden, InternalError, InvalidInput,
                            NotFound, PolicyError, PrivacyError, QueryRejected, SandboxError, Unauthorized)
from web.i18n import ZH


@dataclass(frozen=True)
class ZhError:
    """The Chinese sentences of one code: ``named`` names what the error is about
    with placeholders for its fields (``{table}``, ``{column}``, ``{function}``,
    ``{dataset}``, ``{parameter}``, …) and is used when the error carries all of
    them; ``text`` otherwise. Both may use the placeholders every error has
    (budget figures, ``{error_id}``, ``{where}``)."""

    text: str
    named: str | None = None

    def fields_named(self) -> frozenset[str]:
        """The placeholders of ``named``."""
        if self.named is None:
            return frozenset()
        return frozenset(name for _, name, _, _ in Formatter().parse(self.named) if name)


ZH_ERRORS: dict[str, ZhError] = {
    # refusals of the SQL front end (docs/query-language.md)
    "parse_error": ZhError("无法解析这段 SQL，请检查括号、引号和逗号。"),
    "not_select": ZhError("只允许 SELECT 查询。"),
    "multiple_statements": ZhError("一次只能提交一条语句。"),
    "ambiguous_syntax": ZhError("写法有歧义（例如相邻的字符串常量），请改用 || 或 CONCAT。"),
    "too_complex": ZhError("查询过于复杂（过长、嵌套过深或涉及的表过多）。"),
    "set_operation": ZhError("不允许 UNION、INTERSECT、EXCEPT 等集合运算：一次只能有一个 SELECT。",
                              "不允许 {operation} 等集合运算：一次只能有一个 SELECT。"),
    "table_function": ZhError("FROM 中不允许使用表函数，请直接写数据表名。"),
    "file_access": ZhError("不能读取文件或网址，请写数据集中的数据表名。"),
    "unknown_table": ZhError("数据集中没有这张表。", "数据集中没有数据表“{table}”。"),
    "unlicensed_table": ZhError("您的许可不包括这张表。", "您的许可不包括数据表“{table}”。"),
    "unknown_column": ZhError("没有这一列。", "没有列“{column}”。"),
    "ambiguous_column": ZhError("列名有歧义，请在列名前加上表名。", "列“{column}”有歧义，请在列名前加上表名。"),
    "duplicate_alias": ZhError("同一个名称被用于两张表或两个 CTE。", "名称“{alias}”被用于两张表或两个 CTE。"),
    "duplicate_column": ZhError("子查询中有重复的列名，请为其中一列另起别名。",
                                "子查询中的列名“{column}”重复，请为其中一列另起别名。"),
    "identifier_in_output": ZhError("标识列不能出现在查询结果中。", "标识列 {column_ref} 不能出现在查询结果中。"),
    "identifier_in_group": ZhError("标识列不能作为分组键。", "标识列 {column_ref} 不能作为分组键。"),
    "identifier_in_filter": ZhError("标识列不能用于筛选条件或连接条件。", "标识列 {column_ref} 不能用于筛选条件或连接条件。"),
    "identifier_in_aggregate": ZhError("标识列只能被计数。", "标识列 {column_ref} 只能被计数。"),
    "identifier_in_expression": ZhError("标识列不能参与计算。", "标识列 {column_ref} 不能参与计算。"),
    "no_aggregate": ZhError("不允许输出逐行数据：请使用 COUNT、SUM、AVG 等聚合函数。"),
    "not_grouped": ZhError("列必须出现在 GROUP BY 中或放在聚合函数内。", "列 {column_ref} 必须出现在 GROUP BY 中或放在聚合函数内。"),
    "aggregate_not_allowed": ZhError("不支持这个聚合函数，或此处不允许聚合。", "不支持聚合函数 {function}。"),
    "aggregate_in_group_by": ZhError("不能按聚合结果分组。"),
    "nested_aggregate": ZhError("聚合函数不能嵌套。"),
    "distinct_not_allowed": ZhError("DISTINCT 只能用于对隐私单位计数：COUNT(DISTINCT 隐私单位列)。"),
    "unbounded_aggregate": ZhError("聚合的值没有声明取值范围，请用 LEAST/GREATEST 等限定范围。",
                                   "{function} 聚合的列 {columns} 没有声明取值范围，请用 LEAST/GREATEST 等限定范围。"),
    "invalid_quantile": ZhError("分位数必须是 0 到 1 之间的数。"),
    "window_function": ZhError("不允许使用窗口函数。"),
    "function_not_allowed": ZhError("不允许使用这个函数。", "不允许使用函数 {function}()。"),
    "system_function": ZhError("不允许使用系统函数。", "不允许使用系统函数 {function}()。"),
    "unsupported_syntax": ZhError("不支持这种 SQL 写法。"),
    "subquery_not_allowed": ZhError("子查询只能出现在 FROM 和 WITH 中。"),
    "join_not_on_unit": ZhError("含个人数据的表只能按隐私单位连接。"),
    "join_not_allowed": ZhError("不允许这种连接方式。"),
    "aggregate_subquery": ZhError("对含个人数据的表，子查询只能按隐私单位聚合。"),
    "no_private_table": ZhError("查询没有读取含个人数据的表：公开表请直接从目录下载。"),
    "dataset_restricted": ZhError("该数据集不予开放：只在目录中列出，不能查询。", "数据集“{dataset}”不予开放：只在目录中列出，不能查询。"),
    "invalid_limit": ZhError("LIMIT 必须是正整数。"),
    "invalid_email": ZhError("请填写有效的电子邮件地址（name@domain）。"),
    "invalid_group_by": ZhError("GROUP BY 中的序号超出了 SELECT 列表的范围。"),
    "invalid_order_by": ZhError("ORDER BY 中的序号超出了 SELECT 列表的范围。", "ORDER BY 中的序号 {position} 超出了 SELECT 列表的范围。"),
    "query_rejected": ZhError("查询被拒绝。"),
    # budget and accuracy
    "budget_exceeded": ZhError("隐私预算不足：本次查询需要 ε = {requested_epsilon}，但{level}只剩 ε = {remaining_epsilon}，"
                               "还差 ε = {short_epsilon}。查询没有运行，也没有扣除预算。"),
    "invalid_budget": ZhError("隐私预算参数无效：ε 必须大于 0，且不能同时给出 ε 和精度目标。"),
    "accuracy_unreachable": ZhError("在允许的 ε 范围内达不到这个精度，请放宽目标半宽。",
                                    "输出列 {output} 在 ε 不超过 {max_epsilon} 时达不到这个精度，请放宽目标半宽。"),
    "width_undefined": ZhError("这一输出列无法预先估算精度（只有计数和求和可以）。", "输出列 {output} 无法预先估算精度（只有计数和求和可以）。"),
    "no_budget": ZhError("该数据集或许可尚未设定隐私预算。"),
    # licences and datasets
    "no_licence": ZhError("您没有该数据集的许可。", "您没有数据集“{dataset}”的许可。"),
    "licence_revoked": ZhError("您对该数据集的许可已被撤销。", "您对数据集“{dataset}”的许可已被撤销。"),
    "licence_expired": ZhError("您对该数据集的许可已过期。", "您对数据集“{dataset}”的许可已过期。"),
    "dataset_open": ZhError("这是开放数据集，无需查询：请从目录直接下载。", "数据集“{dataset}”是开放数据集，无需查询：请从目录直接下载。"),
    "no_version": ZhError("该数据集还没有任何版本。", "数据集“{dataset}”还没有任何版本。"),
    "unknown_version": ZhError("该数据集没有这个版本。", "数据集“{dataset}”没有第 {version} 版。"),
    "table_not_found": ZhError("该数据集没有这张表。", "该数据集没有数据表“{table}”。"),
    "unknown_output": ZhError("查询结果中没有这一输出列。", "查询结果中没有输出列“{output}”。"),
    "unknown_setting": ZhError("没有这个设置项。", "没有设置项“{setting}”。"),
    "invalid_setting": ZhError("设置项的值无效。", "设置项 {setting} 的值无效。"),
    "unknown_dataset": ZhError("没有这个数据集。", "没有数据集“{dataset}”。"),
    # governed classification and one source per dataset
    "open_with_identifiers": ZhError("开放数据集不能包含标识列。", "开放数据集不能包含标识列：{columns}。"),
    "duplicate_source": ZhError("这些数据已是另一个数据集的版本（一个数据源只对应一个数据集），请将其添加为该数据集的新版本。",
                                "这些数据已是数据集“{dataset}”的版本（一个数据源只对应一个数据集），"
                                "请将其添加为“{dataset}”的新版本。"),
    "same_classification": ZhError("数据集已是该分级。", "数据集“{dataset}”已是该分级。"),
    "not_queryable_policy": ZhError("该数据集缺少隐私单位或数据集预算，不能设为有条件开放。",
                                    "数据集“{dataset}”缺少隐私单位或数据集预算，不能设为有条件开放。"),
    "invalid_classification": ZhError("分级无效，应为 open、conditional 或 restricted。"),
    "unknown_classification_change": ZhError("没有这项分级变更申请。"),
    "not_owner": ZhError("只有数据集的所有者或管理员可以执行此操作。"),
    "policy_invalid": ZhError("策略文件有误{where}，请修改后重新登记。"),
    "policy_not_found": ZhError("找不到策略文件。"),
    # approval modes, templates and requests
    "template_required": ZhError("该许可只允许运行已批准的查询模板：请运行一个模板，或提议新模板。"),
    "approval_required": ZhError("该许可要求每条查询先经批准：请先提交查询申请。"),
    "template_not_approved": ZhError("该模板尚未获批准，暂不能运行。"),
    "template_needs_reapproval": ZhError("数据集的策略在模板获批后已更改，模板须重新审批。"),
    "template_cap_reached": ZhError("该模板的运行次数或 ε 额度已用完。"),
    "parameter_out_of_domain": ZhError("参数的值不在允许的取值范围内。", "参数“{parameter}”的值不在允许的取值范围内。"),
    "missing_parameter": ZhError("缺少参数。", "缺少参数：{parameters}。"),
    "unknown_parameter": ZhError("模板中没有这个参数。", "模板中没有这些参数：{parameters}。"),
    "unexpected_parameters": ZhError("只有运行模板时才能给出参数。"),
    "request_not_approved": ZhError("该查询申请尚未获批准，暂不能运行。"),
    "request_already_ran": ZhError("该查询申请已经运行过：已批准的申请只能运行一次，请提交新的申请。"),
    "unknown_template": ZhError("没有这个模板，或您无权查看。"),
    "unknown_request": ZhError("没有这个查询申请，或您无权查看。"),
    # review
    "self_review": ZhError("不能审核自己提交的内容。"),
    "already_reviewed": ZhError("您已在本轮审核中投过票，第二票不计入。"),
    # running
    "execution_failed": ZhError("查询运行失败。如需帮助，请向本实例的运维人员提供错误编号 {error_id}。"),
    "query_timeout": ZhError("查询超过了运行时间上限，已被终止。错误编号 {error_id}。"),
    "query_resources": ZhError("查询超过了内存或 CPU 上限，已被终止。错误编号 {error_id}。"),
    "query_failed": ZhError("查询运行失败。错误编号 {error_id}。"),
    "missing_sql": ZhError("没有提供 SQL。"),
    # accounts and access
    "bad_credentials": ZhError("用户名或密码错误。"),
    "user_inactive": ZhError("该账户已停用，请联系管理员。"),
    "user_already_inactive": ZhError("该用户已处于停用状态。"),
    "user_already_active": ZhError("该用户已处于启用状态。"),
    "own_account": ZhError("管理员不能在此停用、启用本人账户，或更改本人的角色和密码；请由另一位管理员操作。"),
    "role_unchanged": ZhError("该用户已是这个角色。"),
    "unknown_user": ZhError("没有这个用户。"),
    "invalid_role": ZhError("角色无效。"),
    "weak_password": ZhError("密码太短，至少需要 8 个字符。"),
    "identity_mismatch": ZhError("DPS_TOKEN 令牌属于另一位用户，与 --as 指定的用户不符。"),
    "credential_required": ZhError("以 --as 指定的用户身份操作需要该用户的凭据：密码、API 令牌或终端提示输入。"),
    "insufficient_scope": ZhError("此令牌的权限范围不足。"),
    "too_many_attempts": ZhError("尝试次数过多，请几分钟后再试。"),
    "csrf_failed": ZhError("表单已过期，请重试。"),
    "not_signed_in": ZhError("请先登录。"),
    "unauthorized": ZhError("请先登录。"),
    "wrong_role": ZhError("您的角色无权执行此操作。"),
    # reading the audit trail (sandbox.audit.view)
    "audit_not_allowed": ZhError("只有管理员和数据集所有者可以查看审计记录。"),
    "bad_time": ZhError("时间格式无效：请使用 ISO 日期或日期时间（如 2026-03-01 或 2026-03-01T09:30:00Z）。"),
    "bad_time_range": ZhError("时间范围为空：起始时间必须早于截止时间。"),
    "bad_object_filter": ZhError("对象的格式为 类型 或 类型:编号（例如 licence:3）。"),
    "bad_action_filter": ZhError("操作应为 query.run 这样的词，或 query.* 这样的一类操作。"),
    "bad_limit": ZhError("条数上限须在 1 到 10000 之间。"),
    "bad_offset": ZhError("偏移量不能为负数。"),
    "forbidden": ZhError("您无权执行此操作。"),
    "not_found": ZhError("要找的内容不存在。"),
    "invalid_input": ZhError("输入的内容无效，请检查后重试。"),
    "invalid_form": ZhError("表单填写有误，请检查后重试。"),
    "conflict": ZhError("当前状态下不能执行此操作。"),
    "privacy_error": ZhError("无法按要求完成隐私计算。"),
    "internal_error": ZhError("服务器出现问题。如需帮助，请向本实例的运维人员提供错误编号 {error_id}。"),
    "method_not_allowed": ZhError("不支持这种请求方式。"),
    "too_large": ZhError("上传的内容过大。"),
    # refusals added with total execution and the fan-out bound (docs/query-language.md)
    "non_literal_argument": ZhError("单位、格式和长度等参数必须直接写成常量，不能取自数据。",
                                     "{function} 的单位、格式和长度等参数必须直接写成常量，不能取自数据。"),
    "query_too_costly": ZhError("查询的代价可能过高（例如长度或重复次数过大，或与公开表连接后行数过多），请缩小范围。"),
    "reserved_name": ZhError("以 __ 开头的名称为系统保留，请换一个名称。", "以 __ 开头的名称为系统保留，请给“{name}”换一个名称。"),
    "bounds_too_large": ZhError("计算结果的取值范围过大，可能溢出，请缩小取值范围或改写表达式。"),
    "spark_unsupported": ZhError("该数据集由 Spark 引擎运行，此查询用到的写法（如分位数）无法在 Spark 上得到与 DuckDB "
                                 "相同的结果，因此被拒绝，未扣除预算。"),
    "rows_read_exceeded": ZhError("此查询需读取的行数超过本实例 Spark 引擎的上限，因此被拒绝，未读取任何数据。"),
    "resources_exceeded": ZhError("按数据集所有者公布的表行数上限估算，此查询所需的内存与溢写空间超过工作进程的上限，因此被拒绝，"
                                  "未读取任何数据，未扣除预算；请加筛选条件、减少分组键或改用有公开取值域的分组键。"),
    "rows_bound_exceeded": ZhError("数据源的行数超过策略中为该表声明的 rows_bound，未存储任何内容；请提高 rows_bound 后重试。"),
    "spark_missing_pyspark": ZhError("本实例未安装 PySpark，Spark 引擎无法运行；未扣除预算。"),
    "spark_missing_java": ZhError("本实例未安装 Java 17 或更高版本，Spark 引擎无法运行；未扣除预算。"),
    "spark_java_too_old": ZhError("本实例的 Java 版本低于 17，Spark 引擎无法运行；未扣除预算。"),
    "spark_missing_javac": ZhError("本实例未安装 JDK 17 或更高版本（缺少 javac，无法构建加密版本所需的密钥服务），"
                                   "Spark 引擎无法运行；未扣除预算。"),
    "spark_kms_build_failed": ZhError("Spark 引擎的密钥服务无法用本实例的 JDK 和 PySpark 编译，Spark 引擎无法运行；未扣除预算。"),
    # running (docs/privacy.md, docs/sandbox-security.md)
    "query_invalid": ZhError("查询在空数据上试运行时失败，未读取任何数据，也未扣除预算。错误编号 {error_id}。"),
    "run_failed": ZhError("查询运行失败（已扣除预算）。如需帮助，请向本实例的运维人员提供错误编号 {error_id}。"),
    "epsilon_below_floor": ZhError("ε 低于单次查询的下限，请提高 ε。",
                                    "ε = {requested_epsilon} 低于单次查询的下限 ε = {floor}，请提高 ε。"),
    "too_many_runs": ZhError("您同时运行的查询过多，请等前面的查询结束后再试。"),
    "query_limit_reached": ZhError("预算允许的查询次数已用完。"),
    # reviewing and requests
    "missing_reason": ZhError("此操作需要填写理由。"),
    "override_reason_required": ZhError("有自动检查给出警告或未通过：批准前需要填写理由。"),
    "invisible_reason": ZhError("理由中没有可见的文字（只有空格或零宽字符），请写明理由。"),
    "unknown_data_request": ZhError("没有这个数据需求。"),
    "missing_product": ZhError("关联数据产品时需要填写产品编号。"),
    "bad_page": ZhError("页码或每页条数无效，请使用从 1 开始的整数。"),
    # sharing between departments (docs/sharing.md)
    "column_not_granted": ZhError("查询用到了授权范围以外的列。", "列“{column}”不在授权范围内。"),
    "table_not_granted": ZhError("查询用到了授权范围以外的表。", "数据表“{table}”不在授权范围内。"),
    "construct_not_allowed": ZhError("查询中有不允许的语法结构。"),
    "bad_filter": ZhError("提取条件必须是一个不含子查询和聚合的布尔表达式。"),
    "not_a_department": ZhError("您不属于任何政府部门（或收件方不是政府部门）。"),
    "company_not_eligible": ZhError("企业不能申请共享数据：企业请通过许可使用数据。"),
    "not_shareable": ZhError("该数据集不予共享。", "数据集“{dataset}”不予共享。"),
    "column_not_shareable": ZhError("申请的列不在可共享范围内。", "列“{column}”不在可共享范围内。"),
    "no_columns": ZhError("请至少申请一列。"),
    "condition_required": ZhError("有条件共享的申请必须说明满足哪一项已声明的条件。"),
    "undeclared_condition": ZhError("所述条件不在数据提供方声明的条件之中。"),
    "refusal_condition_required": ZhError("拒绝申请时必须指明哪一项条件未满足。"),
    "missing_purpose": ZhError("请说明用途（所履行的职责）。"),
    "missing_basis": ZhError("请说明法律依据。"),
    "invalid_expiry": ZhError("有效期无效，请填写将来的日期。"),
    "budget_above_total": ZhError("追加后许可的预算将超过数据集的总预算。"),
    "not_dataset_owner": ZhError("只有数据集的所有者才能处理此事项。"),
    "not_pending": ZhError("该申请已处理，不在待处理状态。"),
    "not_revocable": ZhError("该授权不能撤销。"),
    "not_grantee": ZhError("您不是该授权的接收方。"),
    "grant_pending": ZhError("该共享申请尚未批准。"),
    "grant_rejected": ZhError("该共享申请已被拒绝。"),
    "grant_revoked": ZhError("该共享授权已被撤销。"),
    "grant_expired": ZhError("该共享授权已过期。"),
    "table_required": ZhError("请指明要提取的表。"),
    "bad_format": ZhError("不支持这种文件格式。"),
    "invalid_base_version": ZhError("增量提取的基准版本无效。"),
    "incremental_not_possible": ZhError("无法相对于该版本做增量提取，请做完整提取。"),
    "unknown_sharing_change": ZhError("没有这项共享条款变更。"),
    "not_provider": ZhError("只有数据提供方才能答复。"),
    "already_answered": ZhError("此事项已经答复过。"),
    "not_a_correction": ZhError("答复的更正必须是该数据集的新版本。"),
    "missing_answer": ZhError("请填写答复。"),
    # the audit chain's signing key (docs/audit.md)
    "signing_key_not_in_force": ZhError("签名密钥文件与当前生效的签名密钥不符，且没有记录密钥轮换；请恢复密钥文件或轮换签名密钥。"),
}

# the sentence of an error's class, for a code without its own sentence
_BY_CLASS: tuple[tuple[type, str], ...] = (
    (QueryRejected, "query_rejected"), (BudgetExceeded, "budget_exceeded"), (PolicyError, "policy_invalid"),
    (ExecutionFailed, "execution_failed"), (PrivacyError, "privacy_error"), (InternalError, "internal_error"),
    (Unauthorized, "unauthorized"), (Forbidden, "forbidden"), (NotFound, "not_found"), (Conflict, "conflict"),
    (InvalidInput, "invalid_input"),
)
_BY_STATUS = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 422: "invalid_input",
              400: "invalid_input", 500: "internal_error"}

_LEVELS = {"licence": "许可的预算", "dataset": "数据集的预算",
           "licence_per_query": "许可的单次查询上限", "dataset_per_query": "数据集的单次查询上限"}


@dataclass(frozen=True)
class ErrorText:
    """What an error box shows: ``text`` in the page's language, the stable
    ``code``, and on Chinese pages the English ``original`` as a detail line."""

    text: str
    code: str
    original: str | None = None


def _number(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return "?"


def _figure(fields: Mapping[str, Any], name: str, key: str = "epsilon") -> Any:
    """A budget figure: ``fields[name][key]`` for a budget (ε and δ), else ``fields[name]``."""
    value = fields.get(name)
    return value.get(key) if isinstance(value, Mapping) else value


def _name(value: Any) -> str:
    """A name or a list of names, as a sentence shows it."""
    if isinstance(value, (list, tuple)):
        return "、".join(str(v) for v in value)
    return _number(value) if isinstance(value, float) else str(value)


def _placeholders(fields: Mapping[str, Any]) -> dict[str, str]:
    """Every placeholder a sentence may use: the error's names as they are,
    ``column_ref`` (``table.column``), the budget figures and the generic ones."""
    values = {key: _name(value) for key, value in fields.items()
              if value not in (None, "", [], ()) and not isinstance(value, Mapping) and key != "span"}
    if fields.get("column"):
        values["column_ref"] = f"{fields['table']}.{fields['column']}" if fields.get("table") else str(fields["column"])
    where = ""
    if fields.get("key"):
        where += f"（键 {fields['key']}）"
    if fields.get("line"):
        where += f"（第 {fields['line']} 行）"
    remaining = fields.get("remaining")
    short = remaining.get("difference") if isinstance(remaining, Mapping) else None
    values.update({"requested_epsilon": _number(_figure(fields, "requested")),
                   "remaining_epsilon": _number(_figure(fields, "remaining")),
                   "short_epsilon": _number(_figure({"short": short}, "short")),
                   "level": _LEVELS.get(str(fields.get("level")), "预算"),
                   "error_id": str(fields.get("error_id") or "—"), "where": where})
    return values


def entry_for(code: str, kind: type | None = None, status: int | None = None) -> tuple[str, ZhError] | None:
    """The code whose sentence is used: the error's own, else its class's, else its status's."""
    if code in ZH_ERRORS:
        return code, ZH_ERRORS[code]
    for cls, fallback in _BY_CLASS:
        if kind is not None and issubclass(kind, cls):
            return fallback, ZH_ERRORS[fallback]
    if status in _BY_STATUS:
        return _BY_STATUS[status], ZH_ERRORS[_BY_STATUS[status]]
    return None


def chinese_text(code: str, fields: Mapping[str, Any] | None = None, *, kind: type | None = None,
                 status: int | None = None) -> str | None:
    """The Chinese sentence for an error with this code and these fields, or None
    when no code, class or status has one."""
    found = entry_for(code, kind, status)
    if found is None:
        return None
    used, entry = found
    fields = fields or {}
    values = _placeholders(fields)
    if entry.named is not None and used == code and entry.fields_named() <= values.keys():
        text = entry.named.format(**values)
    else:
        text = entry.text.format(**values)
    span = fields.get("span")
    if span is not None:
        line, column = (span.line, span.column) if hasattr(span, "line") else (span["line"], span["column"])
        text = f"第 {line} 行第 {column} 列：{text}"
    return text


def error_text(error: SandboxError | str | None, lang: str, *, code: str | None = None,
               status: int | None = None, fields: Mapping[str, Any] | None = None) -> ErrorText | None:
    """The error box of a page. ``error`` is a ``SandboxError`` or, for pages that
    only have a code and a message (the error page), the message with ``code``."""
    if error is None:
        return None
    kind: type | None = None
    if isinstance(error, SandboxError):
        message, code, status, kind = error.message, error.code, error.status, type(error)
        fields = error.fields
    else:
        message, code = str(error or ""), code or "error"
    if lang != "zh":
        return ErrorText(message, code)
    zh = chinese_text(code, fields, kind=kind, status=status)
    if zh is None:
        return ErrorText(ZH.get(message, message), code, message if message in ZH else None)
    return ErrorText(zh, code, message or None)
