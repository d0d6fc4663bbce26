"""Finished calls: one normalized record per call, whatever platform reported it."""

from tool_server.calls.models import AppointmentMention, CallRecord, Turn
from tool_server.calls.store import CallStore, Recorded, SyncStatus
from tool_server.calls.sync import CallSync

__all__ = ["AppointmentMention", "CallRecord", "CallStore", "CallSync", "Recorded", "SyncStatus", "Turn"]
