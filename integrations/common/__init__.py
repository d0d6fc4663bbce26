"""Shared machinery every connector uses: deadlines, resilience, OAuth, credential vaults."""
