"""Each agent's signing secret per voice platform, sealed at rest."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.orm import Session

from tool_server.clock import Clock
from tool_server.secret_box import SecretBox
from tool_server.store.database import Database
from tool_server.store.tables import PlatformSecretRow

__all__ = ["PLATFORMS", "Platform", "PlatformSecrets"]

Platform = Literal["vapi", "retell", "elevenlabs", "bland", "synthflow"]
PLATFORMS: tuple[Platform, ...] = ("vapi", "retell", "elevenlabs", "bland", "synthflow")


class PlatformSecrets:
    """The secret a platform signs with (Retell API key, Vapi HMAC secret, webhook secrets…)."""

    def __init__(self, db: Database, box: SecretBox, clock: Clock) -> None:
        self._db = db
        self._box = box
        self._clock = clock

    async def set(self, agent_id: str, platform: Platform, secret: str) -> None:
        sealed = self._box.seal({"secret": secret})

        def work(session: Session) -> None:
            row = session.get(PlatformSecretRow, (agent_id, platform))
            now = self._clock()
            if row is None:
                session.add(
                    PlatformSecretRow(
                        agent_id=agent_id, platform=platform, secret=sealed, created_at=now, updated_at=now
                    )
                )
            else:
                row.secret, row.updated_at = sealed, now

        await self._db.run(work)

    async def get(self, agent_id: str, platform: str) -> str | None:
        sealed = await self._db.run(lambda session: _sealed(session, agent_id, platform))
        return None if sealed is None else self._box.open(sealed)["secret"]


def _sealed(session: Session, agent_id: str, platform: str) -> str | None:
    row = session.get(PlatformSecretRow, (agent_id, platform))
    return None if row is None else row.secret
