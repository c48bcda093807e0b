"""Notifications: one outbox of notices for requesters, operators, reviewers
and owners, written with the change they report (:mod:`.outbox`), and their
delivery by webhook and e-mail, at least once (:mod:`.delivery`)."""
