"""The Salesforce emulator: OAuth token endpoint, SOQL query (with nextRecordsUrl pages), SOSL search,
and sObject rows for Contact, Lead and Task, under `/services/data/vXX.X/`.

Mounted under `/sandbox/salesforce`, which is the login host (token endpoint at
`/services/oauth2/token`, like https://login.salesforce.com); the org's instance (like
https://yourorg.my.salesforce.com) is `{mount}/instance`, the `instance_url` the token answer
names, so REST paths are the real ones below it. A connector that sent REST calls to the login
host instead of `instance_url` would get 404s here, as it would from Salesforce.

Errors are Salesforce's JSON arrays; every API answer carries `Sforce-Limit-Info: api-usage=n/m`,
and past the org's daily limit requests are refused with 403 REQUEST_LIMIT_EXCEEDED.

Injected rate-limit faults answer as Salesforce limits requests: 403 REQUEST_LIMIT_EXCEEDED
("ConcurrentPerOrgLongTxn Limit exceeded."), plus a Retry-After header the kit asks every
emulator for (UNCONFIRMED that Salesforce itself sends one).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.common.sandbox import Sandbox
from integrations.salesforce.sandbox_query import QueryError, parse_soql, parse_sosl, run_soql, run_sosl
from integrations.salesforce.sandbox_state import (
    FIELDS,
    ORG_ID,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_REFRESH_TOKEN,
    USER_ID,
    SalesforceState,
    SfError,
)

__all__ = [
    "INSTANCE_PATH",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_REFRESH_TOKEN",
    "build_sandbox",
    "salesforce_error",
]

Handler = Callable[[Request, SalesforceState], Awaitable[Response]]
_SERVER_ERRORS = {
    500: ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support."),
    503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable"),
}
# Where the org's instance sits below the emulator's mount (the login host).
INSTANCE_PATH = "/instance"
_VERSIONS = ("v57.0", "v58.0", "v59.0", "v60.0", "v61.0", "v62.0")


def salesforce_error(status: int, retry_after: float | None) -> Response:
    """An injected fault as Salesforce answers it."""
    if status == 429:
        wait = retry_after if retry_after is not None else 1.0
        return JSONResponse(
            [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentPerOrgLongTxn Limit exceeded."}],
            status_code=403,
            headers={"Retry-After": str(math.ceil(wait))},
        )
    code, message = _SERVER_ERRORS.get(status, _SERVER_ERRORS[500])
    return JSONResponse([{"message": message, "errorCode": code, "fields": []}], status_code=status)


def _error(error: SfError | QueryError, headers: dict[str, str] | None = None) -> Response:
    if isinstance(error, QueryError):
        error = SfError(400, error.code, error.message)
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def _fields_of(sobject: str) -> frozenset[str] | None:
    for name, fields in FIELDS.items():
        if name.lower() == sobject.lower():
            return fields
    return None


def _sobject_name(raw: str) -> str:
    for name in FIELDS:
        if name.lower() == raw.lower():
            return name
    raise SfError(404, "NOT_FOUND", "The requested resource does not exist")


def _with_attributes(
    sobject: str, version: str, record: Mapping[str, Any], fields: tuple[str, ...] | None
) -> dict[str, Any]:
    url = f"/services/data/{version}/sobjects/{sobject}/{record['Id']}"
    chosen = dict(record) if fields is None else {name: _pick(record, name) for name in fields}
    return {"attributes": {"type": sobject, "url": url}, **chosen}


def _pick(record: Mapping[str, Any], name: str) -> Any:
    for key, value in record.items():
        if key.lower() == name.lower():
            return value
    return None


def build_sandbox(state: SalesforceState | None = None) -> Sandbox:
    org = state or SalesforceState()

    def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Version check, Bearer session check, daily-limit accounting, errors as Salesforce's arrays."""

        async def endpoint(request: Request) -> Response:
            version = request.path_params["version"]
            if version not in _VERSIONS:
                return _error(SfError(404, "NOT_FOUND", "The requested resource does not exist"))
            header = request.headers.get("authorization", "")
            token = header[7:] if header[:7].lower() == "bearer " else ""
            if not token or not org.authorized(token):
                return _error(SfError(401, "INVALID_SESSION_ID", "Session expired or invalid"))
            used, limit = org.count_request()
            usage = {"Sforce-Limit-Info": f"api-usage={used}/{limit}"}
            if used > limit:
                return _error(SfError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), usage)
            try:
                response = await handler(request, org)
            except (SfError, QueryError) as error:
                return _error(error, usage)
            response.headers.update(usage)
            return response

        return endpoint

    async def token_endpoint(request: Request) -> Response:
        return await _token(request, org)

    return Sandbox(
        name="salesforce",
        state=org,
        routes=[
            Route("/services/oauth2/token", token_endpoint, methods=["POST"]),
            Route(f"{INSTANCE_PATH}/services/data", _versions, methods=["GET"]),
            Route(f"{INSTANCE_PATH}/services/data/", _versions, methods=["GET"]),
            *_api_routes(api),
        ],
        error=salesforce_error,
        exempt_paths=("/services/oauth2/",),
    )


def _api_routes(api: Callable[[Handler], Callable[[Request], Awaitable[Response]]]) -> list[Route]:
    base = INSTANCE_PATH + "/services/data/{version}"
    routes: list[Route] = []
    for slash in ("", "/"):
        routes += [
            Route(f"{base}/query{slash}", api(_query), methods=["GET"]),
            Route(f"{base}/search{slash}", api(_search), methods=["GET"]),
            Route(f"{base}/sobjects/{{sobject}}{slash}", api(_object_info), methods=["GET"]),
            Route(f"{base}/sobjects/{{sobject}}{slash}", api(_create), methods=["POST"]),
        ]
    routes += [
        Route(f"{base}/query/{{locator}}", api(_query_more), methods=["GET"]),
        Route(f"{base}/sobjects/{{sobject}}/{{record_id}}", api(_read), methods=["GET"]),
        Route(f"{base}/sobjects/{{sobject}}/{{record_id}}", api(_update), methods=["PATCH"]),
        Route(f"{base}/sobjects/{{sobject}}/{{record_id}}", api(_delete), methods=["DELETE"]),
    ]
    return routes


# -- OAuth -------------------------------------------------------------------------------------------


async def _token(request: Request, org: SalesforceState) -> Response:
    """POST /services/oauth2/token, grant_type=refresh_token (form or Basic client credentials)."""
    form = await request.form()
    client_id, client_secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return JSONResponse({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
    if form.get("grant_type") != "refresh_token":
        return JSONResponse({"error": "unsupported_grant_type", "error_description": "grant type not supported"}, 400)
    try:
        access_token = org.issue_token(client_id, client_secret, str(form.get("refresh_token") or ""))
    except SfError as error:
        return JSONResponse({"error": error.code, "error_description": error.message}, status_code=400)
    # The emulator's own URL (mount point included) is the login host; the instance sits below it.
    login_url = str(request.url.replace(path=request.scope.get("root_path", ""), query="")).rstrip("/")
    instance_url = login_url + INSTANCE_PATH
    issued_at = str(int(time.time() * 1000))
    identity = f"{login_url}/id/{ORG_ID}/{USER_ID}"
    signature = base64.b64encode(
        hmac.new(client_secret.encode(), f"{identity}{issued_at}".encode(), hashlib.sha256).digest()
    ).decode()
    return JSONResponse(
        {
            "access_token": access_token,
            "signature": signature,
            "scope": "refresh_token api",
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
    )


async def _versions(_request: Request) -> Response:
    return JSONResponse([{"label": "Winter '24", "url": f"/services/data/{v}", "version": v[1:]} for v in _VERSIONS])


# -- SOQL and SOSL -----------------------------------------------------------------------------------


def _page(request: Request, org: SalesforceState, rows: list[dict[str, Any]], total: int) -> Response:
    version = request.path_params["version"]
    batch = org.batch_size
    options = request.headers.get("sforce-query-options", "")
    if options.startswith("batchSize="):
        with contextlib.suppress(ValueError):
            batch = max(200, min(2000, int(options.partition("=")[2])))
    first, rest = rows[:batch], rows[batch:]
    body: dict[str, Any] = {"totalSize": total, "done": not rest, "records": first}
    if rest:
        locator = org.open_cursor(rest)
        body["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{total - len(rest)}"
    return JSONResponse(body)


async def _query(request: Request, org: SalesforceState) -> Response:
    """GET query/?q=SELECT…"""
    text = request.query_params.get("q")
    if not text:
        raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
    query = parse_soql(text, _fields_of)
    sobject = _sobject_name(query.sobject)
    version = request.path_params["version"]
    rows = [_with_attributes(sobject, version, r, query.fields) for r in run_soql(query, org.all(sobject))]
    return _page(request, org, rows, len(rows))


async def _query_more(request: Request, org: SalesforceState) -> Response:
    """GET query/01g…-2000: the next batch of an earlier query."""
    locator, _, offset = request.path_params["locator"].partition("-")
    rows = org.take_cursor(locator)
    if rows is None or not offset.isdigit():
        raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    return _page(request, org, rows, int(offset) + len(rows))


async def _search(request: Request, org: SalesforceState) -> Response:
    """GET search/?q=FIND {…} IN … FIELDS RETURNING …"""
    text = request.query_params.get("q")
    if not text:
        raise SfError(400, "MALFORMED_SEARCH", "No search term found. The search term must be enclosed in braces.")
    search = parse_sosl(text, _fields_of)
    version = request.path_params["version"]
    fields = {_sobject_name(name): columns for name, columns in search.returning}
    hits = run_sosl(search, lambda sobject: org.searchable(_sobject_name(sobject)))
    records = []
    seen: set[str] = set()
    for sobject, record in hits:
        name = _sobject_name(sobject)
        if record["Id"] in seen:
            continue
        seen.add(record["Id"])
        records.append(_with_attributes(name, version, dict(record), fields[name]))
    return JSONResponse({"searchRecords": records})


# -- sObject rows --------------------------------------------------------------------------------------


async def _object_info(request: Request, org: SalesforceState) -> Response:
    """GET sobjects/{Type}/: basic information (SObjectRootInfo) and recent items."""
    sobject = _sobject_name(request.path_params["sobject"])
    prefix = {"Contact": "003", "Lead": "00Q", "Task": "00T"}[sobject]
    version = request.path_params["version"]
    return JSONResponse(
        {
            "objectDescribe": {
                "name": sobject,
                "label": sobject,
                "labelPlural": f"{sobject}s",
                "keyPrefix": prefix,
                "custom": False,
                "createable": True,
                "updateable": True,
                "deletable": True,
                "queryable": True,
                "searchable": sobject != "Task",
                "urls": {
                    "sobject": f"/services/data/{version}/sobjects/{sobject}",
                    "describe": f"/services/data/{version}/sobjects/{sobject}/describe",
                    "rowTemplate": f"/services/data/{version}/sobjects/{sobject}/{{ID}}",
                },
            },
            "recentItems": [],
        }
    )


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise SfError(400, "JSON_PARSER_ERROR", "Unexpected character: was expecting a JSON object") from None
    if not isinstance(body, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from an array or value")
    return body


async def _create(request: Request, org: SalesforceState) -> Response:
    """POST sobjects/{Type}/ → 201 SaveResult."""
    sobject = _sobject_name(request.path_params["sobject"])
    body = await _json_body(request)
    body.pop("attributes", None)
    record_id = org.create(sobject, body)
    return JSONResponse({"id": record_id, "success": True, "errors": []}, status_code=201)


async def _read(request: Request, org: SalesforceState) -> Response:
    """GET sobjects/{Type}/{id}?fields=…"""
    sobject = _sobject_name(request.path_params["sobject"])
    record = org.get(sobject, request.path_params["record_id"])
    raw = request.query_params.get("fields")
    fields = None
    if raw:
        fields = tuple(name.strip() for name in raw.split(",") if name.strip())
        unknown = [name for name in fields if _fields_of(sobject) is None or name not in FIELDS[sobject]]
        if unknown:
            raise SfError(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{sobject}'.")
    return JSONResponse(_with_attributes(sobject, request.path_params["version"], record, fields))


async def _update(request: Request, org: SalesforceState) -> Response:
    """PATCH sobjects/{Type}/{id} → 204."""
    sobject = _sobject_name(request.path_params["sobject"])
    body = await _json_body(request)
    body.pop("attributes", None)
    org.update(sobject, request.path_params["record_id"], body)
    return Response(status_code=204)


async def _delete(request: Request, org: SalesforceState) -> Response:
    sobject = _sobject_name(request.path_params["sobject"])
    org.delete(sobject, request.path_params["record_id"])
    return Response(status_code=204)
