"""A real MCP server (official ``mcp`` SDK): stdio, or streamable HTTP with ``--http PORT``."""

import os
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("calc")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def server_pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def env(name: str) -> str:
    """The server's environment variable ``name`` ("" when unset)."""
    return os.environ.get(name, "")


@server.tool()
def header(name: str, ctx: Context) -> str:
    """The request header ``name`` of this call ("" when unset, or over stdio)."""
    return (ctx.headers or {}).get(name.lower(), "")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
