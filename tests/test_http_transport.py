"""The HTTP transport: auth, bad input and odd requests all get a 4xx JSON error, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import MONDAY
from tool_server.agents import CreatedAgent
from tool_server.services import Services
from tool_server.tools import CATALOGUE


def bearer(agent: CreatedAgent) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent.api_key}"}


async def test_health_reports_ok_without_a_key(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_openapi_docs_describe_every_tool_with_its_input_schema(http: httpx.AsyncClient) -> None:
    assert (await http.get("/docs")).status_code == 200
    spec = (await http.get("/openapi.json")).json()

    body = spec["paths"]["/v1/tools/book_appointment"]["post"]["requestBody"]["content"]["application/json"]
    # start may be left out when a hold_id names the slot; the tool then says which is missing.
    assert body["schema"]["required"] == ["caller_name"]
    assert "/v1/tools/send_sms" in spec["paths"]


@pytest.mark.parametrize("schema_format", ["openai", "anthropic", "mcp"])
async def test_the_tool_list_comes_in_each_schema_format(
    http: httpx.AsyncClient, agent: CreatedAgent, schema_format: str
) -> None:
    response = await http.get(f"/v1/tools?format={schema_format}", headers=bearer(agent))

    assert response.status_code == 200
    tools = response.json()["tools"]
    assert len(tools) == len(CATALOGUE)
    first = tools[0]
    if schema_format == "openai":
        assert first["type"] == "function"
        assert first["function"]["name"] == "check_availability"
        assert first["function"]["parameters"]["type"] == "object"
    elif schema_format == "anthropic":
        assert first["name"] == "check_availability"
        assert first["input_schema"]["type"] == "object"
    else:
        assert first["inputSchema"]["type"] == "object"
        assert first["outputSchema"]["type"] == "object"
        assert first["annotations"]["readOnlyHint"] is True


async def test_an_unknown_schema_format_is_a_validation_error(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    response = await http.get("/v1/tools?format=xml", headers=bearer(agent))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["error"]["field"] == "format"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer tsk_wrong"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"X-Api-Key": "nope"}],
    ids=["no key", "wrong key", "wrong scheme", "wrong x-api-key"],
)
async def test_a_missing_or_wrong_key_is_unauthorized_and_nothing_runs(
    http: httpx.AsyncClient, headers: dict[str, str], services: Services
) -> None:
    for request in (
        http.get("/v1/tools", headers=headers),
        http.post("/v1/tools/check_availability", json={}, headers=headers),
        http.post("/v1/tools/no_such_tool", json={}, headers=headers),
    ):
        response = await request
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
    await services.audit.flush()
    from sqlalchemy import func, select

    from tool_server.store.tables import ToolCallRow

    count = await services.db.run(
        lambda session: session.execute(select(func.count()).select_from(ToolCallRow)).scalar_one()
    )
    assert count == 0


async def test_the_key_may_come_in_x_api_key(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    response = await http.post(
        "/v1/tools/check_availability", json={"date": MONDAY}, headers={"X-Api-Key": agent.api_key}
    )

    assert response.status_code == 200


async def test_a_revoked_key_stops_working(http: httpx.AsyncClient, agent: CreatedAgent, services: Services) -> None:
    new_key = await services.agents.issue_key(agent.agent.id, revoke_existing=True)

    old = await http.post("/v1/tools/check_availability", json={}, headers=bearer(agent))
    new = await http.post(
        "/v1/tools/check_availability", json={"date": MONDAY}, headers={"Authorization": f"Bearer {new_key}"}
    )

    assert old.status_code == 401
    assert new.status_code == 200


async def test_an_unknown_tool_is_404_unknown_tool(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    response = await http.post("/v1/tools/teleport", json={}, headers=bearer(agent))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "UNKNOWN_TOOL"
    assert "check_availability" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body", [b"{not json", b"\xff\xfe", b'{"date": "2026-03-09",}'], ids=["broken", "not utf-8", "trailing comma"]
)
async def test_malformed_json_is_a_validation_error_naming_the_body(
    http: httpx.AsyncClient, agent: CreatedAgent, body: bytes
) -> None:
    response = await http.post(
        "/v1/tools/check_availability",
        content=body,
        headers={**bearer(agent), "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["error"]["field"] == "body"


async def test_a_json_body_that_is_not_an_object_is_a_validation_error(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    response = await http.post("/v1/tools/check_availability", json=[1, 2], headers=bearer(agent))

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "arguments"


async def test_an_empty_body_means_no_arguments(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    response = await http.post("/v1/tools/check_availability", headers=bearer(agent))

    assert response.status_code == 200
    assert response.json()["date_from"] == "2026-03-04"


async def test_a_body_over_one_megabyte_is_413(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    huge = b'{"notes": "' + b"a" * (1024 * 1024) + b'"}'

    response = await http.post(
        "/v1/tools/book_appointment", content=huge, headers={**bearer(agent), "Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_streamed_body_over_one_megabyte_is_413(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"a" * 65536

    response = await http.post("/v1/tools/book_appointment", content=chunks(), headers=bearer(agent))

    assert response.status_code == 413


async def test_an_over_long_header_is_a_validation_error(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    response = await http.post(
        "/v1/tools/book_appointment", json={}, headers={**bearer(agent), "Idempotency-Key": "k" * 300}
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Idempotency-Key"


async def test_unknown_routes_and_methods_answer_json_errors(http: httpx.AsyncClient, agent: CreatedAgent) -> None:
    missing = await http.get("/v2/whatever")
    wrong_method = await http.delete("/v1/tools/check_availability", headers=bearer(agent))

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "UNKNOWN_ROUTE"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_the_root_says_what_the_server_is_and_a_get_on_a_tool_route_is_method_not_allowed(
    http: httpx.AsyncClient, agent: CreatedAgent
) -> None:
    root = await http.get("/")
    wrong_method = await http.get("/v1/tools/check_availability", headers=bearer(agent))

    assert root.status_code == 200
    assert root.json()["docs"] == "/docs"
    assert root.json()["health"] == "/healthz"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "speech" in wrong_method.json()["error"]
