"""Delivering an emulator's callbacks (status callbacks, event webhooks) to this server, and only to it.

An emulator keeps the signed requests its vendor would send; tests take them and post them into
the app, and a demo asks the emulator to POST them (`POST /sandbox/<provider>/_callbacks/deliver`).
Either way nothing leaves the machine: a callback for any host but 127.0.0.1 or localhost is
dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

__all__ = ["LOOPBACK_HOSTS", "OutgoingCallback", "deliver", "is_loopback"]

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
_DELIVERY_TIMEOUT_SECONDS = 10.0


class OutgoingCallback(Protocol):
    """A signed request an emulator would send: where, its headers, its raw body."""

    @property
    def url(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def body(self) -> bytes: ...


C = TypeVar("C", bound=OutgoingCallback)


def is_loopback(url: str) -> bool:
    """Whether an emulator may POST to `url`: http(s) on 127.0.0.1 or localhost, nothing else."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS


async def deliver(provider: str, callbacks: Sequence[C]) -> tuple[int, int, list[C]]:
    """POST each callback: (delivered, skipped, the ones whose receiver did not answer, to keep).

    One for a host off this machine is skipped and dropped. A receiver's refusal (a 4xx or 5xx)
    is logged and counts as delivered: the vendors do not retry those forever either.
    """
    delivered = skipped = 0
    retry: list[C] = []
    async with httpx.AsyncClient(timeout=_DELIVERY_TIMEOUT_SECONDS, trust_env=False) as client:
        for callback in callbacks:
            if not is_loopback(callback.url):
                logger.warning("%s sandbox: not posting a callback to %s (not loopback)", provider, callback.url)
                skipped += 1
                continue
            try:
                answer = await client.post(callback.url, content=callback.body, headers=dict(callback.headers))
            except httpx.HTTPError as error:
                logger.warning("%s sandbox: a callback to %s failed (%s); kept", provider, callback.url, error)
                skipped += 1
                retry.append(callback)
                continue
            if answer.status_code >= 300:
                logger.warning("%s sandbox: %s answered %s to a callback", provider, callback.url, answer.status_code)
            delivered += 1
    return delivered, skipped, retry
