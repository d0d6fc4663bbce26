"""Provider integrations: capability protocols, shared models and one folder per provider.

Nothing in this package knows about transports (MCP, HTTP, voice platforms), agents or the
tool server's database. A provider implements one or more capability protocols from
`integrations.capabilities` and speaks to its vendor through the official SDK or httpx.
"""
