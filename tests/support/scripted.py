"""A calendar whose failures a test scripts: a real implementation of the protocol, not a mock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from integrations.capabilities import Appointment, BookingRequest, TimeSlot
from tool_server.agents.models import Agent, Connection
from tool_server.providers import PROVIDERS, ProviderEnv, ProviderSpec, _NoSettings


@dataclass
class Step:
    """What the next call of a method does before answering normally."""

    delay: float = 0.0
    error: BaseException | None = None


@dataclass
class ScriptedCalendar:
    name: str = "scripted_calendar"
    script: dict[str, list[Step]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    booked: list[BookingRequest] = field(default_factory=list)

    @property
    def default_duration(self) -> timedelta:
        return timedelta(minutes=30)

    async def _act(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        steps = self.script.get(method)
        if steps:
            step = steps.pop(0)
            if step.delay:
                await asyncio.sleep(step.delay)
            if step.error is not None:
                raise step.error

    async def free_slots(self, start: datetime, end: datetime, duration: timedelta) -> list[TimeSlot]:
        await self._act("free_slots")
        return [TimeSlot(start=start, end=start + duration)]

    async def book(self, request: BookingRequest) -> Appointment:
        await self._act("book")
        self.booked.append(request)
        return Appointment(
            id=f"apt_scripted_{len(self.booked)}",
            start=request.start,
            end=request.end,
            status="booked",
            attendee_name=request.attendee_name,
            attendee_phone=request.attendee_phone,
            provider=self.name,
        )

    async def reschedule(self, appointment_id: str, start: datetime, end: datetime) -> Appointment:
        raise NotImplementedError

    async def cancel(self, appointment_id: str) -> Appointment:
        raise NotImplementedError

    async def get(self, appointment_id: str) -> Appointment:
        raise NotImplementedError

    async def find(self, *, phone: str | None, email: str | None, since: datetime) -> list[Appointment]:
        await self._act("find")
        return []


def specs_with(calendar: ScriptedCalendar) -> dict[str, ProviderSpec]:
    """The built-in providers plus `scripted_calendar`, which always answers with `calendar`."""

    def build(_env: ProviderEnv, _agent: Agent, _connection: Connection, _settings: BaseModel) -> object:
        return calendar

    return {
        **PROVIDERS,
        calendar.name: ProviderSpec(
            name=calendar.name,
            capabilities=frozenset({"calendar"}),
            settings_model=_NoSettings,
            build=build,
            description="test calendar",
        ),
    }
