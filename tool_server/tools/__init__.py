"""The tool catalogue: typed in, typed out, with a sentence to say."""

from tool_server.tools.base import ToolContext, ToolInput, ToolResult, ToolSpec
from tool_server.tools.catalogue import CATALOGUE, Catalogue

__all__ = ["CATALOGUE", "Catalogue", "ToolContext", "ToolInput", "ToolResult", "ToolSpec"]
