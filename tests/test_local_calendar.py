"""The built-in calendar's storage stays fast as bookings accumulate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from tool_server.builtin import LocalCalendar, LocalCalendarSettings
from tool_server.services import Services


async def test_the_busy_query_is_bounded_on_both_sides_by_the_start_index(services: Services) -> None:
    calendar = LocalCalendar(services.db, "agt_x", LocalCalendarSettings().rules("UTC"), services.clock)
    start = datetime(2026, 6, 1, 9, tzinfo=UTC)
    query = calendar.busy_query(start, start + timedelta(minutes=30))
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))

    def explain(session: Session) -> list[str]:
        return [str(row[-1]) for row in session.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()]

    plan = await services.db.run(explain)

    searches = [line for line in plan if "ix_appointments_agent_start" in line]
    assert searches, plan
    assert "start_at>" in searches[0]
    assert "start_at<" in searches[0]
