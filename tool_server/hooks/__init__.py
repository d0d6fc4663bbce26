"""REST hooks: Zapier, Make and n8n subscribe to the agent's events and get each one POSTed, signed."""

from tool_server.hooks.events import EVENTS, HookEvent, envelope, sample
from tool_server.hooks.sender import HookGoneError, deliver_once, sign
from tool_server.hooks.subscriptions import HookSubscription, HookSubscriptions, NewSubscription

__all__ = [
    "EVENTS",
    "HookEvent",
    "HookGoneError",
    "HookSubscription",
    "HookSubscriptions",
    "NewSubscription",
    "deliver_once",
    "envelope",
    "sample",
    "sign",
]
