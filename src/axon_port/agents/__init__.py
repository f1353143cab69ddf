"""The pydantic-ai bridge: agents defined as data, run on behalf of the client.

This package only re-exports. :class:`AgentService` (``_service``) serves
``define_agent``, ``run``, ``complete``, ``tool_result`` and the agents' part
of ``describe``; the worker creates it on first use (this package is the only
one, with ``examples`` and ``demo``, that imports pydantic-ai). A spec is
pydantic-ai's ``AgentSpec`` plus axon_port's extensions (``docs/agents.md``):
:mod:`._spec` (specs), :mod:`._tools` (the ``tools`` extension),
:mod:`._mcp` (MCP servers), :mod:`._models` (model forms, the script model),
:mod:`._stream` (chunk events), :mod:`._errors` (error kinds),
:mod:`._remote` (client-side tools), :mod:`._agent_table` (built agents and
when their MCP servers stop).
"""

from axon_port.agents._service import AgentService, RequestLike, cancelled_error
from axon_port.agents._warm import warm_up

__all__ = ["AgentService", "RequestLike", "cancelled_error", "warm_up"]
