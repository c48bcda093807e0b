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
    # charts
    "estimate and": "估计值及其",
    "confidence interval": "置信区间",
    # product downloads
    "Download (signed files of the package)": "下载（发布包中的已签名文件）",
    "Unsigned draft results (not a released package)": "未签名的草稿结果（不是已发布的包）",
}
