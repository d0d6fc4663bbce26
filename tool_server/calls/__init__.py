"""Finished calls: one normalized record per call, whatever platform reported it."""

from tool_server.calls.models import AppointmentMention, CallRecord, Turn
from tool_server.calls.store import CallStore, Recorded

__all__ = ["AppointmentMention", "CallRecord", "CallStore", "Recorded", "Turn"]
