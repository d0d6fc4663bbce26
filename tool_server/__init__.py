"""The tool server: one typed tool catalogue served over HTTP, MCP and voice-platform webhooks.

`tool_server` knows no vendor. It turns a transport's request into a dispatched tool call,
and the tool reaches a business's systems only through the capability protocols in
`integrations.capabilities`.
"""

__version__ = "0.1.0"
