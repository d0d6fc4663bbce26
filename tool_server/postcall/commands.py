"""`tool-server worker`, `tool-server calls …` and `tool-server followups …`.

Adding the commands imports nothing heavy (`tool-server --help` stays fast); each handler
imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tool_server.services import Services
    from tool_server.settings import ServerSettings

__all__ = ["add_commands"]

logger = logging.getLogger(__name__)


def _handle(parser: argparse.ArgumentParser, function: str, needs: str) -> None:
    # See tool_server.cli.parser: the handler is imported by name when the command runs.
    parser.set_defaults(handler=f"{__name__}:{function}", needs=needs)


def add_commands(commands: Any) -> None:
    """Add the post-call commands to the `tool-server` parser's subcommands."""
    worker = commands.add_parser("worker", help="run post-call sync workers in this process until stopped")
    worker.add_argument(
        "--id",
        default="worker-1",
        help="this worker's executor id, one per process; a dead worker's work is taken over by any live one",
    )
    worker.add_argument(
        "--no-migrate", action="store_true", help="do not migrate; refuse to start if the schema is behind"
    )
    _handle(worker, "run_worker", "settings")

    calls = commands.add_parser("calls", help="inspect call records and re-run failed post-call steps")
    actions = calls.add_subparsers(dest="calls", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print a call record with its post-call steps")
    show.add_argument("call_id", help="the platform's call id")
    show.add_argument("--agent", required=True, help="agent id")
    _handle(show, "show_call", "services")
    retry = actions.add_parser("retry", help="re-run the call's failed post-call steps")
    retry.add_argument("call_id", help="the platform's call id")
    retry.add_argument("--agent", required=True, help="agent id")
    _handle(retry, "retry_call", "services")

    followups = commands.add_parser("followups", help="the follow-ups an agent sends after each call")
    verbs = followups.add_subparsers(dest="followups", required=True, metavar="ACTION")
    show_followups = verbs.add_parser("show", help="print the agent's follow-ups")
    show_followups.add_argument("agent_id", help="agent id")
    _handle(show_followups, "show_followups", "services")
    set_followups = verbs.add_parser("set", help="change the agent's follow-ups (unnamed ones are kept)")
    set_followups.add_argument("agent_id", help="agent id")
    set_followups.add_argument(
        "--confirmation-sms",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="text the caller a confirmation of the appointment booked (default: unchanged)",
    )
    for flag, what in (
        ("--confirmation-whatsapp", "send the confirmation on WhatsApp (SMS once if it fails)"),
        ("--confirmation-email", "email the caller the confirmation too"),
        ("--team-summary", "post each call's summary to the connected team channel (Slack)"),
        ("--workflow-event", "trigger the connected automation (Zapier) with call.completed"),
        ("--payment-receipt", "text a receipt when a payment link or invoice made here is paid"),
    ):
        set_followups.add_argument(
            flag, action=argparse.BooleanOptionalAction, default=None, help=f"{what} (default: unchanged)"
        )
    set_followups.add_argument(
        "--whatsapp-template", help="approved template for confirmations outside the 24-hour window; '' turns off"
    )
    set_followups.add_argument(
        "--quiet-hours", metavar="HH:MM-HH:MM", help="local hours follow-up texts may arrive, e.g. 08:00-21:00"
    )
    set_followups.add_argument("--payment-amount-minor", type=int, help="text a payment link: 4900 is 49.00")
    set_followups.add_argument("--payment-currency", default="USD", help="ISO 4217 currency of the payment link")
    set_followups.add_argument("--payment-description", help="what the payment link is for")
    set_followups.add_argument("--no-payment-link", action="store_true", help="stop texting payment links")
    set_followups.add_argument("--forward-url", help="POST each call here (Zapier catch hook shape); '' turns off")
    set_followups.add_argument("--team-channel-url", help="Slack-style incoming webhook; '' turns off")
    _handle(set_followups, "set_followups", "services")


def _fail(message: str) -> int:
    print(f"tool-server: {message}", file=sys.stderr)
    return 2


def run_worker(settings: ServerSettings, args: argparse.Namespace) -> int:
    import asyncio

    from tool_server.cli.runtime import ready_database

    ready_database(settings, migrate=not args.no_migrate)
    asyncio.run(_work(settings, args.id))
    return 0


async def _work(settings: ServerSettings, executor_id: str) -> None:
    import asyncio
    import signal

    from tool_server.postcall.engine import PostCallEngine
    from tool_server.services import Services

    services = Services.build(settings)
    engine = PostCallEngine(services, listen=True, executor_id=executor_id)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await engine.start()
    logger.warning("post-call worker %s running", executor_id)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await engine.stop()
        await services.aclose()


async def show_call(services: Services, args: argparse.Namespace) -> int:
    record = await services.calls.get(args.agent, args.call_id)
    if record is None or record.record_id is None:
        return _fail(f"no call {args.call_id!r} for agent {args.agent!r}")
    steps = await services.ledger.states(record.record_id)
    shown = record.model_dump(mode="json", exclude={"payloads", "transcript"})
    print(json.dumps({**shown, "sync_steps": [step.model_dump(mode="json") for step in steps]}, indent=2))
    return 0


async def retry_call(services: Services, args: argparse.Namespace) -> int:
    from tool_server.postcall.engine import PostCallEngine

    record = await services.calls.get(args.agent, args.call_id)
    if record is None or record.record_id is None:
        return _fail(f"no call {args.call_id!r} for agent {args.agent!r}")
    engine = PostCallEngine(services, listen=False, executor_id="cli")
    await engine.start()
    try:
        retried = await engine.retry(record.record_id)
    finally:
        await engine.stop()
    print(json.dumps({"call_id": args.call_id, "retried": retried}, indent=2))
    return 0


async def show_followups(services: Services, args: argparse.Namespace) -> int:
    if await services.agents.get(args.agent_id) is None:
        return _fail(f"no agent {args.agent_id!r}")
    print(json.dumps((await services.followups.get(args.agent_id)).model_dump(mode="json"), indent=2))
    return 0


async def set_followups(services: Services, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from tool_server.postcall.followups import FollowUps

    if await services.agents.get(args.agent_id) is None:
        return _fail(f"no agent {args.agent_id!r}")
    current = (await services.followups.get(args.agent_id)).model_dump(mode="json")
    for name in (
        "confirmation_sms",
        "confirmation_whatsapp",
        "confirmation_email",
        "team_summary",
        "workflow_event",
        "payment_receipt",
    ):
        if getattr(args, name) is not None:
            current[name] = getattr(args, name)
    if args.whatsapp_template is not None:
        current["whatsapp_template"] = args.whatsapp_template or None
    if args.quiet_hours is not None:
        start, _, end = args.quiet_hours.partition("-")
        current["quiet_hours"] = {"allowed_from": start.strip(), "allowed_until": end.strip()}
    if args.no_payment_link:
        current["payment_link"] = None
    elif args.payment_amount_minor is not None or args.payment_description is not None:
        current["payment_link"] = {
            "amount_minor": args.payment_amount_minor,
            "currency": args.payment_currency,
            "description": args.payment_description,
        }
    for name in ("forward_url", "team_channel_url"):
        value = getattr(args, name)
        if value is not None:
            current[name] = value or None
    try:
        followups = FollowUps.model_validate(current)
    except ValidationError as error:
        problem = error.errors()[0]
        return _fail(f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}")
    await services.followups.set(args.agent_id, followups)
    print(json.dumps(followups.model_dump(mode="json"), indent=2))
    return 0
