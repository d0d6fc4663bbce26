"""The catalogue: every tool, declared once. Transports list and run tools only through it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tool_server.tools.accounting import CREATE_INVOICE, FIND_CUSTOMER_ACCOUNT, GET_INVOICE_STATUS, SEND_INVOICE
from tool_server.tools.appointments import (
    BOOK_APPOINTMENT,
    CANCEL_APPOINTMENT,
    FIND_APPOINTMENTS,
    RESCHEDULE_APPOINTMENT,
)
from tool_server.tools.automation import TRIGGER_WORKFLOW
from tool_server.tools.availability import CHECK_AVAILABILITY
from tool_server.tools.base import ToolSpec
from tool_server.tools.contacts import ADD_NOTE, CREATE_CONTACT, FIND_CONTACT
from tool_server.tools.email import SEND_EMAIL
from tool_server.tools.holds import HOLD_SLOT, RELEASE_HOLD
from tool_server.tools.messaging import SEND_SMS, SEND_WHATSAPP
from tool_server.tools.payments import CREATE_PAYMENT_LINK, GET_PAYMENT_STATUS
from tool_server.tools.team import NOTIFY_TEAM

__all__ = ["CATALOGUE", "Catalogue"]


class Catalogue:
    """An ordered, name-unique set of tools."""

    def __init__(self, specs: list[ToolSpec[Any, Any]]) -> None:
        self._specs: dict[str, ToolSpec[Any, Any]] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"tool {spec.name} is declared twice")
            self._specs[spec.name] = spec

    def get(self, name: str) -> ToolSpec[Any, Any] | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return list(self._specs)

    def __iter__(self) -> Iterator[ToolSpec[Any, Any]]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)


CATALOGUE = Catalogue(
    [
        CHECK_AVAILABILITY,
        BOOK_APPOINTMENT,
        HOLD_SLOT,
        RELEASE_HOLD,
        RESCHEDULE_APPOINTMENT,
        CANCEL_APPOINTMENT,
        FIND_APPOINTMENTS,
        FIND_CONTACT,
        CREATE_CONTACT,
        ADD_NOTE,
        CREATE_PAYMENT_LINK,
        GET_PAYMENT_STATUS,
        SEND_SMS,
        SEND_WHATSAPP,
        SEND_EMAIL,
        NOTIFY_TEAM,
        TRIGGER_WORKFLOW,
        FIND_CUSTOMER_ACCOUNT,
        CREATE_INVOICE,
        SEND_INVOICE,
        GET_INVOICE_STATUS,
    ]
)
