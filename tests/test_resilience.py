"""The shared connector machinery: deadlines, retries, the circuit breaker, OAuth refresh."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from integrations.capabilities import ProviderNotConnectedError, RateLimitedError, UpstreamError
from integrations.common.deadline import deadline_scope, remaining
from integrations.common.oauth import TokenManager
from integrations.common.resilience import CircuitBreaker, Resilience, RetryPolicy
from integrations.common.vault import MemoryVault

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


class Script:
    """Attempts that fail as scripted, then succeed."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def fast(attempts: int = 3) -> Resilience:
    return Resilience("acme", RetryPolicy(attempts=attempts, base_delay=0.01, max_delay=0.02, min_attempt_seconds=0.1))


def test_a_nested_deadline_never_extends_the_outer_one() -> None:
    with deadline_scope(1), deadline_scope(60):
        assert remaining() <= 1
    assert remaining(default=42) == 42


async def test_retryable_failures_are_retried_until_success() -> None:
    script = Script(UpstreamError("acme", "boom", status=503, retryable=True))

    assert await fast().call(script) == "ok"
    assert script.calls == 2


async def test_a_non_retryable_failure_is_raised_at_once() -> None:
    script = Script(UpstreamError("acme", "bad request", status=400))

    with pytest.raises(UpstreamError):
        await fast().call(script)
    assert script.calls == 1


async def test_retry_after_is_honoured_when_the_deadline_allows() -> None:
    script = Script(RateLimitedError("acme", retry_after=0.3))
    started = time.monotonic()

    with deadline_scope(5):
        assert await fast().call(script) == "ok"

    assert time.monotonic() - started >= 0.3
    assert script.calls == 2


async def test_a_retry_after_longer_than_the_time_left_is_not_waited_for() -> None:
    script = Script(RateLimitedError("acme", retry_after=30))
    started = time.monotonic()

    with deadline_scope(2), pytest.raises(RateLimitedError):
        await fast().call(script)

    assert time.monotonic() - started < 1
    assert script.calls == 1


async def test_attempts_are_bounded() -> None:
    script = Script(*[UpstreamError("acme", "down", status=503, retryable=True)] * 10)

    with pytest.raises(UpstreamError):
        await fast(attempts=3).call(script)
    assert script.calls == 3


async def test_the_breaker_opens_after_repeated_failures_and_then_fails_fast_without_calling() -> None:
    breaker = CircuitBreaker("acme", threshold=3, cooldown=30)
    resilience = Resilience("acme", RetryPolicy(attempts=1), breaker)
    script = Script(*[UpstreamError("acme", "down", status=503, retryable=True)] * 3)
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await resilience.call(script)

    with pytest.raises(UpstreamError, match="circuit open"):
        await resilience.call(script)

    assert breaker.is_open
    assert script.calls == 3


async def test_after_the_cooldown_one_trial_call_goes_through_and_closes_the_breaker() -> None:
    clock = [0.0]
    breaker = CircuitBreaker("acme", threshold=2, cooldown=10, _clock=lambda: clock[0])
    resilience = Resilience("acme", RetryPolicy(attempts=1), breaker)
    failing = Script(*[UpstreamError("acme", "down", status=503, retryable=True)] * 2)
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await resilience.call(failing)
    clock[0] = 11.0

    assert await resilience.call(Script()) == "ok"
    assert not breaker.is_open


def token_server(answers: list[httpx.Response]) -> tuple[httpx.MockTransport, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(dict(httpx.QueryParams(request.content.decode())))
        return answers.pop(0)

    return httpx.MockTransport(handle), seen


def tokens(vault: MemoryVault, transport: httpx.MockTransport) -> TokenManager:
    return TokenManager("acme", "crm", vault, "http://127.0.0.1:9/token", clock=lambda: NOW, transport=transport)


async def test_a_token_about_to_expire_is_refreshed_before_use() -> None:
    vault = MemoryVault(
        {
            "access_token": "old",
            "refresh_token": "r1",
            "client_id": "c",
            "client_secret": "s",
            "expires_at": (NOW + timedelta(seconds=30)).isoformat(),
        }
    )
    transport, seen = token_server([httpx.Response(200, json={"access_token": "new", "expires_in": 3600})])

    assert await tokens(vault, transport).token() == "new"
    assert seen[0]["grant_type"] == "refresh_token"
    assert seen[0]["refresh_token"] == "r1"
    assert vault.secrets["access_token"] == "new"
    assert vault.secrets["expires_at"] == (NOW + timedelta(hours=1)).isoformat()


async def test_a_valid_token_is_used_without_refreshing() -> None:
    vault = MemoryVault({"access_token": "fine", "expires_at": (NOW + timedelta(hours=1)).isoformat()})
    transport, seen = token_server([])

    assert await tokens(vault, transport).token() == "fine"
    assert seen == []


async def test_concurrent_refreshes_of_one_stale_token_refresh_once() -> None:
    vault = MemoryVault({"access_token": "stale", "refresh_token": "r1"})
    transport, seen = token_server([httpx.Response(200, json={"access_token": "new", "expires_in": 3600})])
    manager = tokens(vault, transport)

    results = await asyncio.gather(*(manager.refresh(stale="stale") for _ in range(5)))

    assert results == ["new"] * 5
    assert len(seen) == 1


async def test_a_refused_refresh_token_marks_the_connection_expired() -> None:
    vault = MemoryVault({"refresh_token": "revoked"})
    transport, _ = token_server([httpx.Response(400, json={"error": "invalid_grant"})])

    with pytest.raises(ProviderNotConnectedError):
        await tokens(vault, transport).token()
    assert vault.expired_reason is not None
    assert "revoked" not in vault.expired_reason


async def test_a_failing_token_endpoint_is_a_retryable_provider_error() -> None:
    vault = MemoryVault({"refresh_token": "r1"})
    transport, _ = token_server([httpx.Response(503, json={})])

    with pytest.raises(UpstreamError) as caught:
        await tokens(vault, transport).token()
    assert caught.value.retryable
    assert vault.expired_reason is None
