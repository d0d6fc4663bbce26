"""Slot holds: hold_slot, and one booking per slot across every server process."""
