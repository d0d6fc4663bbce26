"""Contacts across CRMs: claims that keep one contact per caller, whatever the concurrency."""

from tool_server.contacts.claims import ContactClaims
from tool_server.contacts.guard import GuardedCrm, SavedContact

__all__ = ["ContactClaims", "GuardedCrm", "SavedContact"]
