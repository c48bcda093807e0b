"""The fixed words of data products' own records, one ``StrEnum`` each (see
``queries.vocabulary`` for what a member is and where every vocabulary is documented;
product states are in ``sandbox.vocabulary``, since revoking a licence cancels products)."""

from __future__ import annotations

from enum import StrEnum


class DataRequestStatus(StrEnum):
    """Where a data request from the public stands (``data_requests.status``)."""

    OPEN = "open"                   # filed, not yet triaged
    ACCEPTED = "accepted"           # the owner will answer it with a product
    DECLINED = "declined"           # the owner declined it, with a reason
    CLOSED = "closed"               # a released product answers it
