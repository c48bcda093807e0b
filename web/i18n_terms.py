"""Chinese translations of the pages' newer strings (merged into ``web.i18n.ZH``).

Kept apart from ``web/i18n.py`` so that the catalogue of each part of the
interface can grow without edits to one shared dictionary.
"""

from __future__ import annotations

ZH_TERMS: dict[str, str] = {
    # sign-in
    "The page to return to is not a valid address.": "登录后要返回的页面地址无效。",
    # preview
    "The query is valid, but running it now would be refused": "查询有效，但现在运行会被拒绝",
    "ε is above the per-query cap of the licence budget": "ε 超过了许可预算的单次查询上限",
    "ε is above the per-query cap of the dataset budget": "ε 超过了数据集预算的单次查询上限",
    "ε is more than the licence budget has left": "ε 超过了许可预算的剩余额度",
    "ε is more than the dataset budget has left": "ε 超过了数据集预算的剩余额度",
    "The queries allowed by the budget are used up": "预算允许的查询次数已用完",
    "ε was left blank: the default ε is used": "ε 留空：使用默认 ε",
    "group of": "组内人数",
    "depends on the number of people in the group": "取决于组内的人数",
    "the interval is the whole candidate range; the value is one candidate": "区间为整个候选范围；取值为其中一个候选值",
    "the interval is computed with the result": "区间随结果一起计算",
    # ε in plain language
    "What ε and δ mean for a person in the data": "ε 和 δ 对数据中的每个人意味着什么",
    "Differential privacy limits what anyone can learn about one person from the released numbers, whatever else they know.":
        "差分隐私限制了任何人从发布的数字中能了解到的关于某一个人的信息，无论他们另外还知道什么。",
    "ε (epsilon) bounds how much one person's data can change the chance of any result: by a factor of at most e to the power ε.":
        "ε（epsilon）限制了一个人的数据能在多大程度上改变任一结果出现的概率：最多为 e 的 ε 次方倍。",
    "Here ε =": "此处 ε =",
    "a factor of at most": "最多为原来的倍数",
    "Smaller ε protects people better and makes the numbers noisier; as a guide, ε ≤ 1 is strong protection and ε above 5 is weak.":
        "ε 越小，对个人的保护越好，数字的噪声也越大；一般而言，ε ≤ 1 属于强保护，ε 大于 5 则保护较弱。",
    "δ (delta) is the small probability that this bound does not hold; it should be far below one over the number of people (for example 1e-7).":
        "δ（delta）是上述界限不成立的小概率；它应远小于人数的倒数（例如 1e-7）。",
    "Here δ =": "此处 δ =",
    "Each released number comes with an interval: with": "每个发布的数字都附有一个区间：有",
    "confidence, the number computed without noise lies inside it. The noise hides each person; the interval shows how far it may move the number.":
        "的把握，不加噪声计算出的数字落在该区间内。噪声用来隐藏每个人；区间表示噪声可能使数字偏离多远。",
    "The licence's ε is the total all its queries may spend. Granting more than ε = 5 or δ = 1e-6 gives weak protection and is flagged.":
        "许可的 ε 是其全部查询可消耗的总量。授予超过 ε = 5 或 δ = 1e-6 的许可保护较弱，系统会给出提示。",
    "Warning: this licence allows more than ε = 5 or δ = 1e-6. Such a budget protects the people in the data weakly; check that the purpose needs it, or revoke the licence and grant a smaller one.":
        "警告：此许可允许超过 ε = 5 或 δ = 1e-6。这样的预算对数据中的人保护较弱；请确认用途确实需要，或撤销该许可并授予较小的许可。",
    # decisions, run status, check outcomes
    "approve": "批准", "return": "退回", "reject": "拒绝",
    "charged": "已扣除预算", "reserved": "已预留", "failed": "失败",
    "pass": "通过", "warn": "警告", "fail": "未通过",
    "small_counts": "小计数", "wide_intervals": "区间过宽", "partition_selection": "分组选择",
    "empty_table": "空表", "differencing": "差分攻击",
    # charts
    "estimate and": "估计值及其",
    "confidence interval": "置信区间",
    # navigation: the editor's schema, pages of lists
    "Tables and columns you may query": "可查询的表和列",
    "Identifier columns never appear in an output; they count people or join tables.":
        "标识符列不会出现在输出中；它们只用于计数或连接表。",
    "Pages": "分页", "Previous": "上一页", "Next": "下一页",
    "Page %(page)s of %(pages)s": "第 %(page)s 页，共 %(pages)s 页",
    "items %(first)s–%(last)s of %(total)s": "第 %(first)s–%(last)s 项，共 %(total)s 项",
    # reviewing
    "Purpose the licence was granted for": "许可授予的用途",
    "Warnings about this table": "关于此表的警告",
    "Cells marked ⚠ are the ones a warning is about.": "标有 ⚠ 的单元格就是警告所指的单元格。",
    "Submitted for review.": "已提交审核。",
    "Your approval is recorded.": "您的批准已记录。",
    "The product was returned to its author.": "数据产品已退回给作者。",
    "The product was rejected.": "数据产品已被拒绝。",
    "Released.": "已发布。",
    "Withdrawn.": "已撤回。",
    "(set)": "（已设置）",
    # data requests
    "Data request": "数据需求",
    "Your request number is": "您的需求编号是",
    "Keep this address to follow your request:": "请保存此地址以跟踪您的需求：",
    "Filed": "提交时间", "Decided": "处理时间", "Answered by": "由以下数据产品回应",
    "All data requests": "全部数据需求",
    "Product answering it (number)": "回应它的数据产品（编号）",
    "Link to the product": "关联到数据产品",
    # product downloads
    "Download (signed files of the package)": "下载（发布包中的已签名文件）",
    "Unsigned draft results (not a released package)": "未签名的草稿结果（不是已发布的包）",
}

# Words whose Chinese depends on what they name ("open" as a data class is 开放, as a
# request's status 待处理): templates write ``value|term("request status")``.
TERMS_ZH: dict[str, dict[str, str]] = {
    "column class": {"identifier": "标识符", "quasi": "准标识符", "sensitive": "敏感", "public": "公开"},
    "column type": {"integer": "整数", "float": "浮点数", "string": "字符串", "date": "日期",
                    "timestamp": "时间戳", "boolean": "布尔值"},
    "engine": {"duckdb": "DuckDB 引擎", "spark": "Spark 引擎"},
    "data class": {"open": "开放", "conditional": "有条件开放", "restricted": "不予开放"},
    "request status": {"open": "待处理", "accepted": "已受理", "declined": "已拒绝", "closed": "已关闭"},
    "accounting": {"approx": "近似差分隐私 (ε, δ)", "zcdp": "零集中差分隐私 zCDP", "auto": "自动选择"},
    "role": {"owner": "数据所有者", "operator": "运营者", "reviewer": "审核员", "admin": "管理员", "public": "公众"},
    "approval mode": {"automatic": "自动", "templates": "模板", "each": "逐条审批"},
    "licence status": {"active": "有效", "revoked": "已撤销", "expired": "已过期"},
    "product state": {"draft": "草稿", "submitted": "已提交", "returned": "已退回", "approved": "已批准",
                      "released": "已发布", "rejected": "已拒绝", "withdrawn": "已撤回", "cancelled": "已取消"},
    "run status": {"reserved": "已预留", "charged": "已扣除预算", "failed": "失败"},
    "noise family": {"laplace": "离散拉普拉斯噪声", "gaussian": "离散高斯噪声"},
    "aggregate": {"count": "计数", "count_units": "隐私单位计数", "sum": "求和", "avg": "平均值",
                  "var_pop": "总体方差", "var_samp": "样本方差", "stddev_pop": "总体标准差",
                  "stddev_samp": "样本标准差", "quantile": "分位数"},
    "mechanism": {"discrete_laplace": "离散拉普拉斯机制", "discrete_gaussian": "离散高斯机制",
                  "exponential_quantile": "指数机制（分位数）", "laplace_threshold": "拉普拉斯阈值分组选择",
                  "gaussian_threshold": "高斯阈值分组选择"},
    # sharing between departments
    "sharing class": {"unconditional": "无条件共享", "conditional": "有条件共享", "none": "不予共享"},
    "update frequency": {"daily": "每日", "weekly": "每周", "monthly": "每月", "quarterly": "每季度",
                         "yearly": "每年", "irregular": "不定期"},
    "organisation kind": {"department": "部门", "company": "企业"},
    "notice kind": {"request_filed": "数据需求已提交", "request_answered": "数据需求已答复",
                    "request_closed": "数据需求已关闭", "approval_decided": "审批已决定",
                    "product_reviewed": "数据产品已审核", "product_released": "数据产品已发布",
                    "product_returned": "数据产品被退回", "new_version": "数据集新版本",
                    "licence_revoked": "许可已撤销", "licence_expiring": "许可即将到期",
                    "product_waiting": "数据产品待审核", "classification_waiting": "分级变更待审核",
                    "approval_waiting": "待审批", "share_new_version": "共享数据集新版本"},
    "delivery channel": {"webhook": "Webhook 回调", "email": "电子邮件"},
    "delivery status": {"pending": "待投递", "delivered": "已投递", "failed": "投递失败", "skipped": "无地址，未发送"},
    "classification change status": {"pending": "待审核", "approved": "已批准", "rejected": "已驳回",
                                     "superseded": "已被取代"},
    "classification decision": {"approve": "批准", "reject": "驳回"},
    "read action": {"dataset.download": "下载开放数据", "product.download": "下载数据产品",
                    "product.file": "读取数据产品文件", "query.preview": "预览查询", "query.refuse": "查询被拒绝",
                    "run.download": "下载查询结果"},
    "chain action": {"key.rotate": "轮换签名密钥", "audit.head_publish": "公布审计链头"},
    "operation action": {"key.rotate_master": "轮换主密钥", "instance.backup": "备份实例",
                         "instance.restore": "从备份恢复实例"},
    "head place": {"register": "透明度登记册", "disclosure_report": "年度公开报告"},
    "login surface": {"page": "网页", "api": "应用程序接口", "cli": "命令行"},
    "credential": {"password": "密码", "token": "令牌"},
    "grant status": {"pending": "待审批", "granted": "已授权", "rejected": "已拒绝", "revoked": "已撤销",
                     "expired": "已过期"},
    "share decision": {"approve": "批准", "reject": "拒绝"},
    "update status": {"on_time": "按时更新", "overdue": "已逾期", "irregular": "不定期"},
    "objection status": {"open": "待处理", "corrected": "已更正", "explained": "已说明"},
    "demand status": {"open": "待处理", "listed": "已列入清单", "declined": "已拒绝"},
    "delivery kind": {"pull": "获取数据", "query": "精确查询"},
    "extract format": {"parquet": "Parquet 文件", "csv": "CSV 文件", "json": "JSON Lines 文件"},
    "check": {"small_counts": "小计数", "wide_intervals": "区间过宽", "partition_selection": "分组选择",
              "empty_table": "空表", "differencing": "差分攻击"},
}
# English labels: the word itself where it reads as English, a phrase where it does not
# (a check's name, an aggregate, an accounting). Every fixed vocabulary has both tables in
# full: tests/test_vocabulary.py checks each word of each StrEnum has its two labels.
TERMS_EN: dict[str, dict[str, str]] = {
    "column class": {"identifier": "identifier", "quasi": "quasi", "sensitive": "sensitive", "public": "public"},
    "column type": {"integer": "integer", "float": "float", "string": "string", "date": "date",
                    "timestamp": "timestamp", "boolean": "boolean"},
    "engine": {"duckdb": "DuckDB", "spark": "Spark"},
    "data class": {"open": "open", "conditional": "conditional", "restricted": "restricted"},
    "request status": {"open": "open", "accepted": "accepted", "declined": "declined", "closed": "closed"},
    "accounting": {"approx": "approximate DP (ε, δ)", "zcdp": "zero-concentrated DP (zCDP)", "auto": "chosen automatically"},
    "role": {"owner": "owner", "operator": "operator", "reviewer": "reviewer", "admin": "admin", "public": "public"},
    "approval mode": {"automatic": "automatic", "templates": "templates", "each": "each"},
    "licence status": {"active": "active", "revoked": "revoked", "expired": "expired"},
    "product state": {"draft": "draft", "submitted": "submitted", "returned": "returned", "approved": "approved",
                      "released": "released", "rejected": "rejected", "withdrawn": "withdrawn", "cancelled": "cancelled"},
    "run status": {"reserved": "reserved", "charged": "charged", "failed": "failed"},
    "noise family": {"laplace": "discrete Laplace noise", "gaussian": "discrete Gaussian noise"},
    "aggregate": {"count": "count", "count_units": "count of privacy units", "sum": "sum", "avg": "average",
                  "var_pop": "population variance", "var_samp": "sample variance",
                  "stddev_pop": "population standard deviation", "stddev_samp": "sample standard deviation",
                  "quantile": "quantile"},
    "mechanism": {"discrete_laplace": "discrete Laplace", "discrete_gaussian": "discrete Gaussian",
                  "exponential_quantile": "exponential mechanism (quantile)",
                  "laplace_threshold": "Laplace threshold (partition selection)",
                  "gaussian_threshold": "Gaussian threshold (partition selection)"},
    "sharing class": {"unconditional": "unconditional", "conditional": "conditional", "none": "none"},
    "update frequency": {"daily": "daily", "weekly": "weekly", "monthly": "monthly", "quarterly": "quarterly",
                         "yearly": "yearly", "irregular": "irregular"},
    "organisation kind": {"department": "department", "company": "company"},
    "notice kind": {"request_filed": "data request filed", "request_answered": "data request answered",
                    "request_closed": "data request closed", "approval_decided": "approval decided",
                    "product_reviewed": "product reviewed", "product_released": "product released",
                    "product_returned": "product returned", "new_version": "new dataset version",
                    "licence_revoked": "licence revoked", "licence_expiring": "licence ending soon",
                    "product_waiting": "product waiting for review",
                    "classification_waiting": "classification change waiting", "approval_waiting": "approval waiting",
                    "share_new_version": "new version of a shared dataset"},
    "delivery channel": {"webhook": "webhook", "email": "e-mail"},
    "delivery status": {"pending": "pending", "delivered": "delivered", "failed": "failed",
                        "skipped": "skipped (no address)"},
    "classification change status": {"pending": "pending", "approved": "approved", "rejected": "rejected",
                                     "superseded": "superseded"},
    "classification decision": {"approve": "approve", "reject": "reject"},
    "read action": {"dataset.download": "open data downloaded", "product.download": "product downloaded",
                    "product.file": "product file read", "query.preview": "query previewed",
                    "query.refuse": "query refused", "run.download": "run result downloaded"},
    "chain action": {"key.rotate": "signing key rotated", "audit.head_publish": "chain head published"},
    "operation action": {"key.rotate_master": "master key rotated", "instance.backup": "instance backed up",
                         "instance.restore": "instance restored from a backup"},
    "head place": {"register": "transparency register", "disclosure_report": "disclosure report"},
    "login surface": {"page": "pages", "api": "API", "cli": "command line"},
    "credential": {"password": "password", "token": "API token"},
    "grant status": {"pending": "pending", "granted": "granted", "rejected": "rejected", "revoked": "revoked",
                     "expired": "expired"},
    "share decision": {"approve": "approve", "reject": "reject"},
    "update status": {"on_time": "on time", "overdue": "overdue", "irregular": "no promise"},
    "objection status": {"open": "open", "corrected": "corrected", "explained": "explained"},
    "demand status": {"open": "open", "listed": "listed", "declined": "declined"},
    "delivery kind": {"pull": "extract", "query": "exact query"},
    "extract format": {"parquet": "Parquet", "csv": "CSV", "json": "JSON Lines"},
    "check": {"small_counts": "small count", "wide_intervals": "wide interval",
              "partition_selection": "partition selection", "empty_table": "empty table",
              "differencing": "differencing"},
}


def term(value: object, kind: str, lang: str) -> str:
    """``value`` (a stored word: a class, a type, a status) as shown in ``lang``."""
    text = "" if value is None else str(value)
    if lang == "zh":
        return TERMS_ZH[kind].get(text, text)
    return TERMS_EN.get(kind, {}).get(text, text)


def check_text(check: dict, lang: str) -> str:
    """A disclosure check's message in ``lang``: the Chinese sentence is built from
    the check's name, status and details (the English message is the service's)."""
    if lang != "zh":
        return check.get("message", "")
    d = check.get("details") or {}
    name, failing = check.get("name"), check.get("status") != "pass"
    if name == "small_counts":
        return (f"{d.get('cells')} 个含噪计数低于 {d.get('threshold')}，发布时将被隐藏" if failing
                else f"没有低于 {d.get('threshold')} 的含噪计数")
    if name == "wide_intervals":
        return f"{d.get('cells')} 个单元格的置信区间比其数值还宽" if failing else "每个区间都比其数值窄"
    if name == "partition_selection":
        return "分组由私有分组选择确定：罕见的分组不会出现在表中" if failing else "每个分组都来自公开取值域"
    if name == "empty_table":
        return "此表没有任何可发布的行"
    if name == "differencing":
        if not failing:
            return "本产品中和已发布的产品中都没有相近的查询"
        matches = d.get("matches") or []
        combined = d.get("combined_epsilon")
        eps = f"{float(combined):.4g}" if isinstance(combined, (int, float)) else "?"
        return f"与 {len(matches)} 个其他表相近：对它们做差分可能孤立出少数个体；这些行上合计 ε = {eps}"
    return check.get("message", "")


# the planner's notes (queries/plan.py), by their exact shape
_NOTES_ZH: tuple[tuple[str, str], ...] = (
    (r"bounding skipped: rows_per_unit = 1", "无需限制贡献：每个单位最多一行（rows_per_unit = 1）"),
    (r"group limit not binding: max_groups = (\d+) covers every group", "分组上限不起作用：max_groups = {0} 已覆盖所有分组"),
    (r"join fan-out (\d+) folded into max_rows", "连接扇出 {0} 已计入每组行数上限 max_rows"),
)


def note_text(note: str, lang: str) -> str:
    """A planner's note in ``lang`` (the note itself when its shape is unknown)."""
    import re

    if lang == "zh":
        for pattern, zh in _NOTES_ZH:
            match = re.fullmatch(pattern, note)
            if match:
                return zh.format(*match.groups())
    return note
