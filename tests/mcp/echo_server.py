"""A tiny MCP server for rsops' round-trip test: one tool that reports an
environment variable, so a test can see what a launched server received."""

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("rsops-echo")


@server.tool()
def getenv(name: str) -> str:
    """The value of the environment variable NAME, or <unset>."""
    return os.environ.get(name, "<unset>")


if __name__ == "__main__":
    server.run("stdio")
