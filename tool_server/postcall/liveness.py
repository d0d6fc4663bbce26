"""Which post-call executors are alive, and the one-winner takeover of those that are not.

DBOS records which executor owns each PENDING workflow, and recovers them only for the executor
ids it is told are gone: at launch, a process recovers its own id. So a dead worker's workflows
used to wait for a worker started with the same `--id`. Here every listening worker heartbeats
a row in `postcall_executors` (its own thread and connection, so a busy event loop does not make
it look dead), and every `heartbeat` seconds looks for executors silent for longer than
`takeover_after`. It claims each with a compare-and-set on the row (one taker wins, on SQLite and
PostgreSQL alike), puts the dead executor's PENDING workflows back on their own queues (DBOS's
recovery: the per-provider queues and their limits still apply, and the queue's dequeue admits
one runner), then marks the row `taken`.

Three rules keep a workflow from running twice:
- A worker restarted with the dead one's id registers before DBOS launches, and waits while a live
  taker is `taking` its id; once the workflows are back on their queues they are no longer PENDING
  under that id, so its own launch recovery finds none of them.
- A worker whose row was taken while it was in fact alive (paused longer than `takeover_after`)
  learns it at its next heartbeat and is fenced: the engine exits the process rather than run, next
  to their new owner, workflows that are back on the queues. Until that heartbeat its queues kept
  dequeuing, so it first marks its row alive as of now and beats no more: once stale, the row is
  taken over again and those workflows too go back on their queues.
- A worker takes over only after its own heartbeats have succeeded without a gap for longer than
  `takeover_after`: after a database outage every live worker has beaten again by then, so no
  worker mistakes its peers for dead because they could not reach the database either.

Times are each worker's wall clock; `takeover_after` must exceed the clock skew between machines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tool_server.store.database import Database
from tool_server.store.tables import PostCallExecutorRow

__all__ = ["Liveness"]

logger = logging.getLogger(__name__)

_TABLE: Any = PostCallExecutorRow.__table__
_ALIVE, _TAKING, _TAKEN = "alive", "taking", "taken"
# Rows of executors taken over this long ago (and never back since) are deleted.
_FORGET_MS = 7 * 24 * 3600 * 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class _Seen:
    """A row as read: the compare half of a compare-and-set."""

    executor_id: str
    state: str
    last_seen_ms: int
    taken_by: str | None

    def matches(self) -> Any:
        taken_by = _TABLE.c.taken_by.is_(None) if self.taken_by is None else _TABLE.c.taken_by == self.taken_by
        return and_(
            _TABLE.c.executor_id == self.executor_id,
            _TABLE.c.state == self.state,
            _TABLE.c.last_seen_ms == self.last_seen_ms,
            taken_by,
        )


class Liveness:
    """This executor's heartbeat and its share of taking over dead executors. One per listening process.

    `register` (blocking) before DBOS launches, then `start`; `take_over` from the engine's loop
    (on a thread: it blocks on the databases); `stop` at shutdown. `on_fenced` is called from the
    heartbeat thread if another worker took this executor over.
    """

    def __init__(
        self,
        database_url: str,
        executor_id: str,
        *,
        heartbeat_seconds: float,
        takeover_after_seconds: float,
        on_fenced: Callable[[], None],
    ) -> None:
        if takeover_after_seconds <= 2 * heartbeat_seconds:
            raise ValueError("postcall_takeover_after_seconds must be more than twice postcall_heartbeat_seconds")
        # Its own engine and thread: heartbeats neither queue behind the server's units of work
        # nor wait for a busy event loop.
        self._db = Database(database_url, workers=1)
        self.executor_id = executor_id
        self._beat_ms = int(heartbeat_seconds * 1000)
        self._stale_ms = int(takeover_after_seconds * 1000)
        self._on_fenced = on_fenced
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Start of the current unbroken run of successful heartbeats (None: no run yet).
        self._streak_since_ms: int | None = None
        self._last_beat_ms: int | None = None

    # -- this executor -------------------------------------------------------------------------

    def register(self, *, timeout: float = 60.0) -> None:
        """Mark this executor alive; while a live worker is taking over this id, wait for it to finish."""
        deadline = time.monotonic() + timeout
        while True:
            with self._db.engine.begin() as connection:
                row = connection.execute(select(_TABLE).where(_TABLE.c.executor_id == self.executor_id)).first()
                now = _now_ms()
                if row is None:
                    try:
                        connection.execute(
                            insert(_TABLE).values(executor_id=self.executor_id, state=_ALIVE, last_seen_ms=now)
                        )
                    except IntegrityError:
                        continue  # registered by a twin this instant: read it again
                    self._beaten(now)
                    return
                seen = _Seen(row.executor_id, row.state, row.last_seen_ms, row.taken_by)
                if not (seen.state == _TAKING and self._alive(connection, seen.taken_by, now)):
                    changed = connection.execute(
                        update(_TABLE)
                        .where(seen.matches())
                        .values(state=_ALIVE, last_seen_ms=now, taken_by=None, taken_at_ms=None)
                    ).rowcount
                    if changed:
                        self._beaten(now)
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(f"executor {self.executor_id!r} is still being taken over by another worker")
            time.sleep(0.1)

    def start(self) -> None:
        """Heartbeat on a daemon thread until `stop`."""
        self._thread = threading.Thread(target=self._beat_forever, name=f"heartbeat-{self.executor_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; the row goes stale, so a live worker takes over what this one leaves PENDING."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._db.engine.dispose()

    def _beat_forever(self) -> None:
        while not self._stop.wait(self._beat_ms / 1000):
            try:
                self._beat()
            except Exception:
                self._streak_since_ms = None
                logger.warning("post-call heartbeat of %s failed; trying again", self.executor_id, exc_info=True)

    def _beat(self) -> None:
        now = _now_ms()
        with self._db.engine.begin() as connection:
            changed = connection.execute(
                update(_TABLE)
                .where(_TABLE.c.executor_id == self.executor_id, _TABLE.c.state == _ALIVE)
                .values(last_seen_ms=now)
            ).rowcount
        if not changed:
            self._streak_since_ms = None
            self._stop.set()
            self._hand_back()
            self._on_fenced()
            return
        self._beaten(now)

    def _hand_back(self) -> None:
        """Fenced: mark this row alive as of now, so it is taken over once more after this process is gone.

        Between the taker's recovery and this heartbeat, this worker's queues kept dequeuing:
        those workflows are PENDING under this id and no recovery has seen them. Beating no more
        (the process exits at once), the row goes stale, and a live worker recovers them. A taker
        still `taking` finds its own finish a no-op and the row is claimed again, by it or another.
        """
        try:
            with self._db.engine.begin() as connection:
                connection.execute(
                    update(_TABLE)
                    .where(_TABLE.c.executor_id == self.executor_id, _TABLE.c.state != _ALIVE)
                    .values(state=_ALIVE, last_seen_ms=_now_ms(), taken_by=None, taken_at_ms=None)
                )
        except Exception:
            # The database is unreachable: what this worker dequeued after the takeover stays
            # PENDING under its id until a worker is started with it.
            logger.error("fenced post-call executor %s could not hand its row back", self.executor_id, exc_info=True)

    def _beaten(self, now: int) -> None:
        # A gap longer than two beats breaks the run: this worker may itself have looked dead.
        if self._last_beat_ms is None or self._streak_since_ms is None or now - self._last_beat_ms > 2 * self._beat_ms:
            self._streak_since_ms = now
        self._last_beat_ms = now

    def _steady(self) -> bool:
        """Whether this worker's heartbeats have run unbroken long enough to judge others' silence."""
        streak, last = self._streak_since_ms, self._last_beat_ms
        now = _now_ms()
        if streak is None or last is None:
            return False
        return now - last <= 2 * self._beat_ms and now - streak > self._stale_ms

    # -- the others ----------------------------------------------------------------------------

    def take_over(self, recover: Callable[[str], int]) -> dict[str, int]:
        """Claim each dead executor (one taker wins), `recover(executor_id)` its workflows, mark it taken.

        Returns {dead executor id: workflows put back on their queues} for those this worker took.
        """
        if not self._steady():
            return {}
        taken: dict[str, int] = {}
        for seen in self._dead():
            if not self._claim(seen):
                continue
            recovered = recover(seen.executor_id)
            with self._db.engine.begin() as connection:
                connection.execute(
                    update(_TABLE)
                    .where(
                        _TABLE.c.executor_id == seen.executor_id,
                        _TABLE.c.state == _TAKING,
                        _TABLE.c.taken_by == self.executor_id,
                    )
                    .values(state=_TAKEN)
                )
                # Ids that never came back (a per-process id, a retired machine) would pile up.
                connection.execute(
                    delete(_TABLE).where(_TABLE.c.state == _TAKEN, _TABLE.c.last_seen_ms < _now_ms() - _FORGET_MS)
                )
            taken[seen.executor_id] = recovered
        return taken

    def _dead(self) -> list[_Seen]:
        """Executors silent too long, and takeovers left unfinished by a taker that is now dead (or by us)."""
        with self._db.engine.begin() as connection:
            rows = connection.execute(select(_TABLE).where(_TABLE.c.state != _TAKEN)).all()
        now = _now_ms()
        fresh = {row.executor_id for row in rows if now - row.last_seen_ms <= self._stale_ms and row.state == _ALIVE}
        dead = []
        for row in rows:
            if row.executor_id == self.executor_id:
                continue
            silent = row.state == _ALIVE and row.executor_id not in fresh
            left_unfinished = row.state == _TAKING and (row.taken_by == self.executor_id or row.taken_by not in fresh)
            if silent or left_unfinished:
                dead.append(_Seen(row.executor_id, row.state, row.last_seen_ms, row.taken_by))
        return dead

    def _claim(self, seen: _Seen) -> bool:
        with self._db.engine.begin() as connection:
            changed = connection.execute(
                update(_TABLE)
                .where(seen.matches())
                .values(state=_TAKING, taken_by=self.executor_id, taken_at_ms=_now_ms())
            ).rowcount
        return bool(changed)

    def _alive(self, connection: Connection, executor_id: str | None, now: int) -> bool:
        if executor_id is None:
            return False
        row = connection.execute(
            select(_TABLE.c.state, _TABLE.c.last_seen_ms).where(_TABLE.c.executor_id == executor_id)
        ).first()
        return row is not None and row.state == _ALIVE and now - row.last_seen_ms <= self._stale_ms
