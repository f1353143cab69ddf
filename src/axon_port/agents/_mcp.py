"""The ``MCP`` capability of a spec, with stdio servers as well as HTTP ones.

pydantic-ai's own ``MCP`` capability takes only ``url=`` from a spec. This
subclass keeps that name and form, and adds ``command`` / ``args`` / ``env`` /
``cwd`` for stdio servers: the server runs through ``_mcp_launch.py``, which ties
its life to the worker's (``PR_SET_PDEATHSIG``). Servers are started when their
agent is entered (``define_agent``, or the first run of an agent defined
otherwise) and stopped when the agent is replaced or evicted (once no run uses it
any more: see ``_agent_table``) or the worker exits.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_ai.capabilities import MCP
from pydantic_ai.exceptions import UserError

__all__ = ["SpecMCP"]

_LAUNCHER = str(Path(__file__).with_name("_mcp_launch.py"))
_INIT_TIMEOUT = 10.0


# A dataclass, as pydantic-ai requires of spec capability types (MCP's fields are
# its own: mypy misreads their order through MCP's hand-written __init__).
@dataclass(init=False)
class SpecMCP(MCP[Any]):  # type: ignore[misc]
    """``{"MCP": {"url": …}}`` (streamable HTTP) or ``{"MCP": {"command": …}}`` (stdio)."""

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return "MCP"

    @classmethod
    def from_spec(  # type: ignore[override]
        cls,
        url: str | None = None,
        *,
        command: str | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        init_timeout: float = _INIT_TIMEOUT,
        native: bool = False,
        id: str | None = None,
        authorization_token: str | None = None,
        headers: dict[str, str] | None = None,
        allowed_tools: list[str] | None = None,
        tool_prefix: str | bool | None = None,
        description: str | None = None,
        include_instructions: bool = True,
        defer_loading: bool = False,
    ) -> MCP[Any]:
        common: dict[str, Any] = {
            "id": id,
            "allowed_tools": allowed_tools,
            "tool_prefix": tool_prefix,
            "include_instructions": include_instructions,
            "defer_loading": defer_loading,
        }
        if (url is None) == (command is None):
            raise UserError("MCP: give url (a streamable-HTTP server) or command (a stdio server)")
        if url is not None:
            if args or env or cwd:
                raise UserError("MCP: args, env and cwd are for stdio servers (command)")
            return MCP.from_spec(
                url,
                native=native,
                authorization_token=authorization_token,
                headers=headers,
                description=description,
                **common,
            )
        if native or headers or authorization_token:
            raise UserError("MCP: native, headers and authorization_token need a url server")
        assert command is not None
        return MCP(None, local=stdio_toolset(command, args, env, cwd, id, init_timeout,
                                             include_instructions), **common)  # fmt: skip


def stdio_toolset(
    command: str,
    args: list[str] | None,
    env: dict[str, str] | None,
    cwd: str | None,
    id: str | None,
    init_timeout: float,
    include_instructions: bool,
) -> Any:
    """An ``MCPToolset`` running ``command args`` over stdio, killed with the worker."""
    from fastmcp.client.transports import StdioTransport
    from pydantic_ai.mcp import MCPToolset

    if not command:
        raise UserError("MCP: command must be a non-empty string")
    transport = StdioTransport(
        command=sys.executable,
        args=[_LAUNCHER, str(os.getpid()), command, *(args or [])],
        env=env,
        cwd=cwd,
        keep_alive=False,  # the process lives exactly as long as the entered agent
    )
    return MCPToolset(
        transport,
        id=id or Path(command).name,
        include_instructions=include_instructions,
        init_timeout=init_timeout,
    )
