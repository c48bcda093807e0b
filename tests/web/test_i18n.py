"""Every UI string has a Chinese translation."""

from __future__ import annotations

import re
from pathlib import Path

import web
from web.i18n import ZH

WEB = Path(web.__file__).parent
STRING = re.compile(r"""_\(\s*(["'])(.+?)\1\s*\)""")


def ui_strings() -> set[str]:
    found = set()
    for path in list((WEB / "templates").glob("*.html")) + [p for p in WEB.glob("*.py") if p.name != "i18n.py"]:
        found |= {m.group(2) for m in STRING.finditer(path.read_text(encoding="utf-8"))}
    # strings passed to _() indirectly: roles, classes, statuses, page titles, flash messages
    found |= {"owner", "operator", "reviewer", "admin", "open", "conditional", "restricted", "active", "revoked",
              "dataset", "licence", "Data products", "Drafts", "Review queue", "Transparency register",
              "Data requests", "Licence granted.", "Draft created.", "Request received.",
              "draft", "submitted", "returned", "approved", "released", "rejected", "withdrawn", "cancelled",
              "accepted", "declined", "closed", "expired", "Nothing waits for review.", "Released data products", "Licence revoked.", "User added.",
              "Too many attempts. Try again in a few minutes.", "Wrong user name or password.",
              "automatic", "templates", "each", "proposed", "pending", "ran", "Decision recorded.",
              "Template proposed.", "Submitted for approval.", "Approval mode changed.", "Reviewer delegated.",
              "Report published.", "Submitted for review.", "Your approval is recorded.",
              "The product was returned to its author.", "The product was rejected.", "Released.", "Withdrawn."}
    return found


def test_every_ui_string_is_translated():
    strings = ui_strings()
    assert len(strings) > 100
    missing = sorted(s for s in strings if s not in ZH)
    assert not missing, missing


def test_translations_are_not_copies():
    same = [k for k, v in ZH.items() if k == v and k not in ("SQL",)]
    assert not same, same
