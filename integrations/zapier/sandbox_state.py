"""The Zapier emulator's in-memory account: its catch hooks (one seeded) and every delivery they caught.

Each hook belongs to a Zap that is on or off. As Zapier does, a hook answers success whether
or not a Zap is on behind it (or there is one at all); the delivery records whether its Zap
would run (`zap_ran`). Tests (and the control routes) can turn a Zap off, add hooks, or make a
hook answer 404/410 as a dropped REST-hook subscription does.
"""

from __future__ import annotations

import copy
import threading
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["SANDBOX_ACCOUNT_ID", "SANDBOX_HOOK_ID", "SNAPSHOT_VERSION", "HookGoneError", "ZapierState"]

# The sandbox Zap's hook: https://hooks.zapier.com/hooks/catch/5550123/sbx7hk2/ on the real host.
SANDBOX_ACCOUNT_ID = "5550123"
SANDBOX_HOOK_ID = "sbx7hk2"
# The format `snapshot()` writes; `restore()` refuses any other.
SNAPSHOT_VERSION = 1

GoneStatus = Literal[404, 410]


class HookGoneError(Exception):
    """The hook answers `status` instead of catching (set by `drop`)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"hook answers {status}")
        self.status = status


class _Hook(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    account_id: str
    hook_id: str
    zap_on: bool = True
    # unconfirmed: a status Zapier answers for catch hooks instead of success; None (the documented
    # behaviour) catches. 410 is what Zapier answers to a REST-hook URL whose Zap unsubscribed.
    gone: GoneStatus | None = None


class _Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    account_id: str
    hook_id: str
    silent: bool
    method: str
    content_type: str | None
    # The trigger data, as the Zap would see it before flattening (query fields merged in).
    data: dict[str, Any]
    # A body that is neither a JSON object nor a form, kept as text (Catch Raw Hook would see it).
    raw_body: str | None
    idempotency_key: str | None
    # ISO 8601 with microseconds, UTC.
    received_at: str
    zap_ran: bool


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int
    hooks: list[_Hook]
    deliveries: list[_Delivery]


class ZapierState:
    """The sandbox account's catch hooks and what they caught (oldest first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: dict[tuple[str, str], _Hook] = {}
        self._deliveries: list[_Delivery] = []
        self._seed()

    # -- SandboxState ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "hooks": [hook.model_dump(mode="json") for hook in self._hooks.values()],
                "deliveries": [delivery.model_dump(mode="json") for delivery in self._deliveries],
            }

    def reset(self) -> None:
        with self._lock:
            self._hooks.clear()
            self._deliveries.clear()
            self._seed()

    def expire_access_tokens(self) -> None:
        """Catch hooks have no tokens: nothing expires."""

    def revoke_refresh_tokens(self) -> None:
        """Catch hooks have no tokens: nothing to revoke."""

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            saved = _Snapshot(
                version=SNAPSHOT_VERSION, hooks=list(self._hooks.values()), deliveries=list(self._deliveries)
            )
            # A JSON dump builds new containers all the way down: nothing is shared with the state.
            return saved.model_dump(mode="json")

    def restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"not a zapier sandbox snapshot of format {SNAPSHOT_VERSION}: {snapshot.get('version')!r}")
        saved = _Snapshot.model_validate(copy.deepcopy(snapshot))
        for delivery in saved.deliveries:
            datetime.fromisoformat(delivery.received_at)  # ValueError for a time this state never wrote
        with self._lock:
            self._hooks = {(hook.account_id, hook.hook_id): hook for hook in saved.hooks}
            self._deliveries = saved.deliveries

    # -- what the catch routes do -----------------------------------------------------------------

    def catch(
        self,
        account_id: str,
        hook_id: str,
        *,
        silent: bool,
        method: str,
        content_type: str | None,
        data: dict[str, Any],
        raw_body: str | None,
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        """Record one delivery and return it; `HookGoneError` when the hook was dropped."""
        with self._lock:
            hook = self._hooks.get((account_id, hook_id))
            if hook is not None and hook.gone is not None:
                raise HookGoneError(hook.gone)
            delivery = _Delivery(
                id=str(uuid.uuid4()),
                account_id=account_id,
                hook_id=hook_id,
                silent=silent,
                method=method,
                content_type=content_type,
                data=copy.deepcopy(data),
                raw_body=raw_body,
                idempotency_key=idempotency_key,
                received_at=datetime.now(UTC).isoformat(timespec="microseconds"),
                zap_ran=hook is not None and hook.zap_on,
            )
            self._deliveries.append(delivery)
            return delivery.model_dump(mode="json")

    # -- what tests and the control routes drive -----------------------------------------------

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [delivery.model_dump(mode="json") for delivery in self._deliveries]

    def add_hook(self, account_id: str, hook_id: str) -> None:
        """A new Zap (on) with this catch hook."""
        with self._lock:
            self._hooks[(account_id, hook_id)] = _Hook(account_id=account_id, hook_id=hook_id)

    def turn(self, account_id: str, hook_id: str, *, on: bool) -> None:
        """Turn the hook's Zap on or off (its hook still answers success, as Zapier's does)."""
        with self._lock:
            self._known(account_id, hook_id).zap_on = on

    def drop(self, account_id: str, hook_id: str, status: GoneStatus | None = 410) -> None:
        """Make the hook answer `status` instead of catching (None: catch again)."""
        with self._lock:
            self._known(account_id, hook_id).gone = status

    def _known(self, account_id: str, hook_id: str) -> _Hook:
        hook = self._hooks.get((account_id, hook_id))
        if hook is None:
            raise KeyError(f"no hook {account_id}/{hook_id}")
        return hook

    def _seed(self) -> None:
        seeded = _Hook(account_id=SANDBOX_ACCOUNT_ID, hook_id=SANDBOX_HOOK_ID)
        self._hooks[(seeded.account_id, seeded.hook_id)] = seeded
