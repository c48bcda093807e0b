"""Translations of the user interface (English and Chinese).

A small dictionary-based catalogue: the English text is the key, ``ZH`` holds its
Chinese translation. ``tests/web/test_i18n.py`` extracts every ``_("...")``
string from the templates and views and checks each one is translated, so a
new UI string without a translation fails the suite.
"""

from __future__ import annotations

from flask import request, session

LANGUAGES = ("en", "zh")
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}

ZH: dict[str, str] = {
    # layout and navigation
    "dp-sandbox": "dp-sandbox 数据沙箱",
    "Skip to content": "跳到正文",
    "Main navigation": "主导航",
    "Catalog": "目录",
    "Data products": "数据产品",
    "Transparency register": "透明度登记",
    "Data requests": "数据需求",
    "My datasets": "我的数据集",
    "Register a dataset": "登记数据集",
    "Licences": "许可",
    "Query editor": "查询编辑器",
    "My runs": "我的查询",
    "Drafts": "草稿",
    "Review queue": "审核队列",
    "Administration": "管理",
    "Log in": "登录",
    "Log out": "退出",
    "Language": "语言",
    "Signed in as": "当前用户",
    "Role": "角色",
    "owner": "数据所有者",
    "operator": "运营者",
    "reviewer": "审核员",
    "admin": "管理员",
    "public": "公众",
    "open": "开放",
    "conditional": "有条件开放",
    "restricted": "不予开放",
    # login
    "User name": "用户名",
    "Password": "密码",
    "Wrong user name or password.": "用户名或密码错误。",
    "Too many attempts. Try again in a few minutes.": "尝试次数过多，请几分钟后再试。",
    "Your session form expired. Please try again.": "表单已过期，请重试。",
    # catalog
    "Data catalog": "数据目录",
    "Search": "搜索",
    "Search datasets and products": "搜索数据集和数据产品",
    "Access class": "开放类别",
    "Publisher": "发布机构",
    "Any": "全部",
    "Filter": "筛选",
    "Datasets": "数据集",
    "Datasets held by this instance": "本实例持有的数据集",
    "Name": "名称",
    "Title": "标题",
    "Access": "开放方式",
    "Versions": "版本",
    "No datasets yet.": "暂无数据集。",
    "No data products yet.": "暂无数据产品。",
    "Released data products": "已发布的数据产品",
    # dataset page
    "Dataset": "数据集",
    "Description": "说明",
    "Classification": "分类",
    "Privacy unit": "隐私单位",
    "Owner": "所有者",
    "Tables": "数据表",
    "Table": "数据表",
    "Column": "列",
    "Class": "类别",
    "Type": "类型",
    "Bounds": "取值范围",
    "Public domain": "公开取值域",
    "Public table": "公开表",
    "yes": "是",
    "no": "否",
    "Download": "下载",
    "Download the open data": "下载开放数据",
    "Open data downloads are not available on this instance yet.": "本实例暂不提供开放数据下载。",
    "This dataset is not shareable: only its description is listed.": "该数据集不予共享，仅列出其说明。",
    "Licensed operators query this dataset in the sandbox with differential privacy.":
        "获得许可的运营者可在沙箱中以差分隐私方式查询此数据集。",
    "Quality report": "质量报告",
    "Version": "版本",
    "Rows": "行数",
    "Content hash": "内容哈希",
    "Registered": "登记时间",
    # budget
    "Privacy budget": "隐私预算",
    "Budget": "预算",
    "Scope": "范围",
    "Total": "总额",
    "Spent": "已用",
    "Reserved": "预留",
    "Remaining": "剩余",
    "Per query": "每次查询上限",
    "dataset": "数据集",
    "licence": "许可",
    "Budget use": "预算使用情况",
    # owner
    "Policy file": "策略文件",
    "Data files": "数据文件",
    "Register": "登记",
    "The policy file (TOML) names the dataset, its tables, column classes, bounds and budget.":
        "策略文件（TOML）声明数据集名称、数据表、列类别、取值范围和预算。",
    "Choose the data files the policy names (Parquet or CSV).": "选择策略文件中引用的数据文件（Parquet 或 CSV）。",
    "Registration failed": "登记失败",
    "Registered version": "已登记版本",
    "The same data and policy were already registered.": "相同的数据和策略已经登记过。",
    "Grant a licence": "授予许可",
    "Operator": "运营者",
    "Purpose": "用途",
    "Expires": "到期日",
    "Epsilon (ε)": "隐私参数 ε",
    "Delta (δ)": "隐私参数 δ",
    "Grant": "授予",
    "Revoke": "撤销",
    "Reason": "理由",
    "Status": "状态",
    "active": "有效",
    "revoked": "已撤销",
    "No licences yet.": "暂无许可。",
    "Licence granted.": "许可已授予。",
    "Licence revoked.": "许可已撤销。",
    "Tables (comma-separated, empty for all)": "数据表（逗号分隔，留空表示全部）",
    # operator
    "Dataset and licence": "数据集与许可",
    "SQL": "SQL",
    "Preview": "预览",
    "Run": "运行",
    "Preview costs nothing: it checks the query and estimates its cost and accuracy.":
        "预览不消耗预算：它检查查询并估算成本和精度。",
    "Running spends privacy budget.": "运行会消耗隐私预算。",
    "The query was refused": "查询被拒绝",
    "Code": "代码",
    "at line": "位于第",
    "column": "列",
    "The query is accepted": "查询已通过检查",
    "Cost": "成本",
    "Expected accuracy": "预期精度",
    "Output column": "输出列",
    "Expected ± half-width": "预期 ± 半宽",
    "Notes": "备注",
    "Result": "结果",
    "Interval": "区间",
    "confidence intervals": "置信区间",
    "Charged": "已扣除",
    "Run id": "查询编号",
    "Groups suppressed": "被隐去的分组",
    "Chart": "图表",
    "No runs yet.": "暂无查询。",
    "You hold no active licence.": "您没有有效的许可。",
    "Make a draft product from this run": "用本次查询结果创建草稿产品",
    "Create draft": "创建草稿",
    "Submit for review": "提交审核",
    "State": "状态",
    "Created": "创建时间",
    "Product": "数据产品",
    "Runs": "查询",
    "Download results": "下载结果",
    "The query could not run": "查询无法运行",
    # products and review
    "Checks": "检查",
    "Check": "检查项",
    "Outcome": "结果",
    "Approve": "批准",
    "Return": "退回",
    "Reject": "拒绝",
    "Decision": "决定",
    "Nothing waits for review.": "暂无待审核的产品。",
    "Privacy loss history": "隐私损失历史",
    "Differencing warning": "差分攻击警告",
    "Reviews": "审核记录",
    "Reviewer": "审核员",
    "Manifest": "清单",
    "Signature": "签名",
    "valid": "有效",
    "invalid": "无效",
    "Provenance": "来源",
    "Download product (zip)": "下载产品（zip）",
    "Data products are not available on this instance yet.": "本实例暂未启用数据产品功能。",
    "File a data request": "提交数据需求",
    "Contact": "联系方式",
    "Send": "提交",
    "Request received.": "需求已收到。",
    "Triage": "处理",
    "Accept": "接受",
    "Decline": "拒绝",
    # admin
    "Users": "用户",
    "Add a user": "添加用户",
    "Display name": "显示名称",
    "Organisation": "机构",
    "Add": "添加",
    "User added.": "用户已添加。",
    "Active": "有效",
    "Keys": "密钥",
    "Signing public key": "签名公钥",
    "Settings": "设置",
    "Setting": "设置项",
    "Value": "值",
    "Audit chain": "审计链",
    "Audit chain intact": "审计链完整",
    "Audit chain broken": "审计链已损坏",
    "records": "条记录",
    "API tokens": "API 令牌",
    "New token": "新令牌",
    "Copy it now: it is shown only once.": "请立即复制：令牌只显示一次。",
    # errors
    "Error": "错误",
    "Page not found.": "页面不存在。",
    "You are not allowed to do this.": "您无权执行此操作。",
    "Please log in.": "请先登录。",
    "Something went wrong on our side.": "服务器出现问题。",
    "Back to the catalog": "返回目录",
}


def current_language() -> str:
    """The language of this request: ?lang=, then the session, then Accept-Language."""
    lang = request.args.get("lang")
    if lang in LANGUAGES:
        return lang
    lang = session.get("lang") if session else None
    if lang in LANGUAGES:
        return lang
    return request.accept_languages.best_match(LANGUAGES, default="en") or "en"


def translate(text: str, lang: str | None = None) -> str:
    lang = lang or current_language()
    if lang == "zh":
        return ZH.get(text, text)
    return text
