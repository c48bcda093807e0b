"""Chinese translations of the pages' newer strings (merged into ``web.i18n.ZH``).

Kept apart from ``web/i18n.py`` so that the catalogue of each part of the
interface can grow without edits to one shared dictionary.
"""

from __future__ import annotations

ZH_TERMS: dict[str, str] = {
    # sign-in
    "The page to return to is not a valid address.": "登录后要返回的页面地址无效。",
    # charts
    "estimate and": "估计值及其",
    "confidence interval": "置信区间",
    # product downloads
    "Download (signed files of the package)": "下载（发布包中的已签名文件）",
    "Unsigned draft results (not a released package)": "未签名的草稿结果（不是已发布的包）",
}
