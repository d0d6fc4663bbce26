"""The post-call engine of one process: DBOS launched on the server's own database.

Every process that records calls runs one (to enqueue); processes that `listen` also run the
workflows. On SQLite the DBOS system database is a sibling file of the app database; on
PostgreSQL it is the same database (DBOS keeps its tables in schema `dbos`), so any number of
`tool-server worker` processes on any machine share the queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID

from tool_server import __version__
from tool_server.postcall.jobs import SMS_FALLBACK
from tool_server.postcall.late_updates import update_job
from tool_server.postcall.liveness import Liveness
from tool_server.postcall.workflows import (
    CALL_QUEUE,
    HOOKS_QUEUE,
    Runtime,
    call_workflow_id,
    deliver_event,
    deliver_receipt,
    job_queue,
    load_call,
    set_runtime,
    start_job,
    sync_call,
)
from tool_server.services import Services
from tool_server.settings import ServerSettings
from tool_server.store.database import prepare_sqlite_file, sync_database_url

__all__ = ["PostCallEngine", "system_database_url"]

logger = logging.getLogger(__name__)

# Records queued this long ago without a started workflow are started by the sweep.
_SWEEP_GRACE = timedelta(seconds=5)


def system_database_url(settings: ServerSettings) -> str:
    """Where DBOS keeps workflows, steps and queues (see the module docstring)."""
    if settings.postcall_system_database_url:
        return settings.postcall_system_database_url
    url = sync_database_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("post-call sync needs a file database; set TOOL_SERVER_POSTCALL_SYSTEM_DATABASE_URL")
        path = Path(url.database)
        return str(url.set(drivername="sqlite", database=str(path.with_name(f"{path.stem}.dbos{path.suffix}"))))
    return url.render_as_string(hide_password=False)


class PostCallEngine:
    """Starts call syncs (`submit`), restarts failed jobs (`retry`), and, when `listen`, runs them.

    One per process: DBOS is process-wide. `executor_id` names this process's share of the work.
    A listening engine heartbeats and takes over dead executors (see `liveness`): a worker that
    dies has its running workflows finished by any live worker within `postcall_takeover_after_seconds`
    plus a heartbeat, whatever its id; one restarted with the same id first waits for such a takeover.
    """

    def __init__(self, services: Services, *, listen: bool = True, executor_id: str | None = None) -> None:
        self._services = services
        self._listen = listen
        self._executor_id = executor_id or services.settings.postcall_executor_id
        self._runtime = Runtime(services)
        self._sweeper: asyncio.Task[None] | None = None
        self._taker: asyncio.Task[None] | None = None
        self._liveness: Liveness | None = None
        self._threads = max(64, services.settings.postcall_concurrency * 8)

    async def start(self) -> None:
        settings = self._services.settings
        system_url = system_database_url(settings)
        # DBOS would create its SQLite file world-readable; it holds call data too: 0600.
        prepare_sqlite_file(sync_database_url(system_url))
        if self._listen:
            self._liveness = Liveness(
                settings.database_url,
                self._executor_id,
                heartbeat_seconds=settings.postcall_heartbeat_seconds,
                takeover_after_seconds=settings.postcall_takeover_after_seconds,
                on_fenced=self._fenced,
            )
            # Before DBOS launches and recovers this id's PENDING workflows: not while another
            # worker is putting them back on their queues.
            await asyncio.to_thread(self._liveness.register)
            self._liveness.start()
        config: DBOSConfig = {
            "name": "tool-server",
            "system_database_url": system_url,
            "executor_id": self._executor_id,
            # Fixed per release, so a restarted worker of the same release recovers its workflows.
            "application_version": __version__,
            "log_level": "WARNING",
            "notification_listener_polling_interval_sec": 0.2,
            # DBOS makes its pool the loop's default executor, where the providers' synchronous
            # SDK calls wait on the network; its default size is only the CPU count + 4.
            "max_executor_threads": self._threads,
        }
        try:
            DBOS(config=config)
            if not self._listen:
                DBOS.listen_queues([])
            set_runtime(self._runtime)
            # On this loop's thread: DBOS then runs the workflows on this loop, next to the services.
            DBOS.launch()
        except BaseException:
            if self._liveness is not None:
                await asyncio.to_thread(self._liveness.stop)
                self._liveness = None
            raise
        await self._runtime.queue(CALL_QUEUE)
        self._services.sync = self
        self._sweeper = asyncio.create_task(self._sweep_forever())
        if self._liveness is not None:
            self._taker = asyncio.create_task(self._take_over_forever(self._liveness))

    async def stop(self) -> None:
        for task in (self._sweeper, self._taker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._services.sync = None
        await asyncio.to_thread(DBOS.destroy, destroy_registry=False)
        set_runtime(None)
        # DBOS made its thread pool this loop's default executor and has just shut it down;
        # give the loop a fresh one so to_thread keeps working after the engine stops.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="asyncio")
        )
        if self._liveness is not None:
            # Only now: while DBOS was stopping, its workflows still ran here. What it left PENDING
            # is taken over by a live worker once this row goes stale.
            await asyncio.to_thread(self._liveness.stop)
            self._liveness = None

    async def submit(self, record_id: str) -> None:
        record = await self._services.calls.by_id(record_id)
        if record is None:
            return
        queue = await self._runtime.queue(CALL_QUEUE)
        with SetWorkflowID(call_workflow_id(record)):
            await queue.enqueue_async(sync_call, record_id)

    async def retry(self, record_id: str) -> list[str]:
        services = self._services
        loaded = await load_call(services, record_id)
        if loaded is None:
            return []
        record, agent = loaded
        reopened = await services.ledger.reopen_failed(record_id)
        if not reopened:
            return []
        await services.calls.set_status(record_id, "syncing")
        base = call_workflow_id(record)
        for job, retry in reopened:
            await start_job(record_id, job, f"{base}:{job}:retry{retry}", job_queue(agent, job), agent.id)
        return [job for job, _ in reopened]

    async def resync(self, record_id: str, fields: tuple[str, ...]) -> str | None:
        """Plan and start the CRM update for what a late event changed; once per distinct change."""
        services = self._services
        loaded = await load_call(services, record_id)
        if loaded is None or not fields:
            return None
        record, agent = loaded
        if "crm" not in agent.connections:
            return None
        job = update_job(record, fields)
        if not await services.ledger.plan(record_id, agent.id, [job]):
            return None  # this change was planned before (a replay, or two events saying the same)
        await services.calls.set_status(record_id, "syncing")
        await start_job(record_id, job, f"{call_workflow_id(record)}:{job}", job_queue(agent, job), agent.id)
        return job

    async def deliver_hook(self, subscription_id: str, payload: dict[str, Any]) -> None:
        """Start the durable delivery of one event to one subscriber; its id makes a repeat a no-op."""
        queue = await self._runtime.queue(HOOKS_QUEUE)
        with SetWorkflowID(f"hook:{subscription_id}:{payload['id']}"):
            await queue.enqueue_async(deliver_event, subscription_id, payload)

    async def send_receipt(self, agent_id: str, provider: str, object_id: str) -> None:
        """Start the durable receipt text for one paid object; its id makes a repeat a no-op."""
        queue = await self._runtime.queue(HOOKS_QUEUE)
        with SetWorkflowID(f"receipt:{agent_id}:{provider}:{object_id}"):
            await queue.enqueue_async(deliver_receipt, agent_id, provider, object_id)

    async def fall_back_to_sms(self, message_id: str) -> None:
        """A WhatsApp follow-up failed: plan the call's `sms_fallback` job and start it, once per call."""
        services = self._services
        message = await services.messages.by_id(message_id)
        if message is None or message.call_record_id is None or message.channel != "whatsapp":
            return
        loaded = await load_call(services, message.call_record_id)
        if loaded is None:
            return
        record, agent = loaded
        record_id = message.call_record_id
        if not await services.ledger.plan(record_id, agent.id, [SMS_FALLBACK]):
            return  # planned before: the call falls back to SMS once
        await services.calls.set_status(record_id, "syncing")
        base = call_workflow_id(record)
        await start_job(record_id, SMS_FALLBACK, f"{base}:{SMS_FALLBACK}", job_queue(agent, SMS_FALLBACK), agent.id)

    async def sweep(self) -> int:
        """Start records that were queued but never started (say, a crash right after recording),
        and those whose final event never came within `postcall_final_event_wait_seconds`."""
        calls, now = self._services.calls, self._services.clock()
        wait = timedelta(seconds=self._services.settings.postcall_final_event_wait_seconds)
        await calls.give_up_waiting(before=now - wait)
        queued = await calls.queued(before=now - _SWEEP_GRACE)
        for record_id in queued:
            await self.submit(record_id)
        return len(queued)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                started = await self.sweep()
                if started:
                    logger.info("post-call sync: started %d queued calls", started)
            except Exception:
                logger.exception("post-call sweep failed; trying again later")
            await asyncio.sleep(self._services.settings.postcall_sweep_seconds)

    async def _take_over_forever(self, liveness: Liveness) -> None:
        # Four looks per heartbeat (one small read each): a death is acted on within a quarter
        # heartbeat of its row going stale, not a whole one.
        while True:
            await asyncio.sleep(self._services.settings.postcall_heartbeat_seconds / 4)
            try:
                taken = await asyncio.to_thread(liveness.take_over, _recover)
            except Exception:
                logger.exception("post-call takeover check failed; trying again later")
                continue
            for dead, count in taken.items():
                logger.warning("post-call executor %s is gone: %d of its workflows back on their queues", dead, count)

    def _fenced(self) -> None:
        """Another worker took this executor's workflows while it was paused: they are back on
        their queues, so running them on here would run them twice. Exit; a supervisor restarts
        the process, which registers afresh."""
        logger.critical(
            "post-call executor %s missed its heartbeats long enough to be taken over; exiting so its "
            "workflows do not run twice",
            self._executor_id,
        )
        sys.stderr.flush()
        os._exit(75)


def _recover(executor_id: str) -> int:
    """Put `executor_id`'s PENDING workflows of this release back on their queues (DBOS's own recovery)."""
    return len(DBOS._recover_pending_workflows([executor_id]))
