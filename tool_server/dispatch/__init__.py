"""Dispatch: deadline, idempotency, audit and error translation for every tool call."""

from tool_server.dispatch.dispatcher import CallInfo, Deadlines, Dispatcher, ToolOutcome

__all__ = ["CallInfo", "Deadlines", "Dispatcher", "ToolOutcome"]
