"""A complete MCP client for the tool server: list the tools, find a free slot, book it.

Start the server with scripts/demo (it prints an API key), then:

    .venv/bin/python scripts/mcp_client_example.py --key tsk_… [--url http://127.0.0.1:8000/mcp]

It speaks MCP over streamable HTTP through the official Python SDK (`mcp`), the way an LLM
host or a voice pipeline (Pipecat, LiveKit) does. `X-Call-Id` ties its calls to one call, so a
retried booking is never made twice.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def run(url: str, key: str, caller_phone: str) -> int:
    headers = {"Authorization": f"Bearer {key}", "X-Call-Id": "mcp-example-call"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        listed = await client.list_tools()
        print("tools:", ", ".join(tool.name for tool in listed.tools))

        found = await client.call_tool("check_availability", {"date": "tomorrow"})
        answer = found.structured_content or {}
        if found.is_error:
            print("error:", answer["error"]["code"], answer["error"]["speech"])
            return 1
        print("agent says:", answer["speech"])
        if not answer["slots"]:
            return 0

        booked = await client.call_tool(
            "book_appointment",
            {"start": answer["slots"][0]["start"], "caller_name": "Jane Doe", "caller_phone": caller_phone},
        )
        answer = booked.structured_content or {}
        if booked.is_error:
            print("error:", answer["error"]["code"], answer["error"]["speech"])
            return 1
        print("agent says:", answer["speech"])
        print("appointment:", answer["appointment"]["appointment_id"])
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="the agent's API key (tsk_…)")
    parser.add_argument("--url", default="http://127.0.0.1:8000/mcp", help="the server's MCP endpoint")
    parser.add_argument("--phone", default="+12125550142", help="the caller's phone number for the booking")
    args = parser.parse_args()
    return asyncio.run(run(args.url, args.key, args.phone))


if __name__ == "__main__":
    sys.exit(main())
