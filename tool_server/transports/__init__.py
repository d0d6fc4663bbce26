"""Transports: thin adapters that walk the one catalogue and call dispatch."""
