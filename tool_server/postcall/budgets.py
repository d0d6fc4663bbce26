"""Each connection's share of its provider's request limit, for the post-call workers together.

Every worker used to start up to `postcall_concurrency` jobs per provider queue, so four workers
could together spend four times a provider's limit (HubSpot: 100 requests per 10 s per account)
and leave nothing for the calls in progress. Now each provider queue whose integration documents
a limit (`IntegrationSpec.request_budget`) is partitioned by agent (one connection per provider
and agent) and rate-limited per partition by DBOS, which counts the jobs started in the database:
the limit holds across every worker. A job makes a few requests (`REQUESTS_PER_JOB`), and a
provider serving several capabilities (GoHighLevel: CRM and calendar) splits the share between
its queues.
"""

from __future__ import annotations

from typing import TypedDict

from integrations.common.spec import RequestBudget
from integrations.registry import INTEGRATIONS
from tool_server.settings import ServerSettings

__all__ = ["REQUESTS_PER_JOB", "QueueLimit", "queue_limit"]

# Requests one try of a job makes at most, roughly: a CRM job searches by phone and email,
# creates or updates, writes the note and logs the call.
REQUESTS_PER_JOB = {"crm": 5, "calendar": 3, "accounting": 4}
_OTHER_JOB_REQUESTS = 2


class QueueLimit(TypedDict):
    """DBOS's rate limit: at most `limit` workflows started per `period` seconds."""

    limit: int
    period: float


def queue_limit(queue_name: str, settings: ServerSettings) -> QueueLimit | None:
    """The per-connection limit of a provider queue (`postcall.<job>.<provider>`), or None."""
    parts = queue_name.split(".")
    if not settings.postcall_rate_limits or len(parts) != 3 or parts[0] != "postcall":
        return None
    job, provider = parts[1], parts[2]
    spec = INTEGRATIONS.get(provider)
    if spec is None:
        return None
    override = settings.postcall_request_budgets.get(provider)
    budget = spec.request_budget if override is None else RequestBudget(override[0], override[1], source="settings")
    if budget is None:
        return None
    share = settings.postcall_budget_share / max(1, len(spec.capabilities))
    jobs = budget.requests * share / REQUESTS_PER_JOB.get(job, _OTHER_JOB_REQUESTS)
    if jobs >= 1:
        return {"limit": int(jobs), "period": budget.seconds}
    # Less than one job per window: one job per as many windows as it takes.
    return {"limit": 1, "period": budget.seconds / jobs}
