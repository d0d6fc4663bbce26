"""Voice platforms: their tool-call envelopes, signatures, exports and call-completed webhooks.

Platforms are transports (how a call reaches the catalogue), so they live in `tool_server`; the
business systems a tool acts in stay behind the capability protocols.
"""
