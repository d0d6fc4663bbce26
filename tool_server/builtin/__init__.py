"""Built-in providers, the embedded default: they need no account anywhere.

They live in `tool_server` rather than `integrations/` because they keep their data in the
tool server's own database, and `integrations/` knows no database.
"""

from tool_server.builtin.contact_book import ContactBook
from tool_server.builtin.ledger import Ledger
from tool_server.builtin.local_calendar import LocalCalendar, LocalCalendarSettings
from tool_server.builtin.outbox import Outbox

__all__ = ["ContactBook", "Ledger", "LocalCalendar", "LocalCalendarSettings", "Outbox"]
