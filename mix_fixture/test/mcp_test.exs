defmodule AxonPort.MCPTest do
  use ExUnit.Case, async: true

  import AxonPort.TestHelpers

  alias AxonPort.Worker

  @moduletag :agents

  # A real MCP server written with the official `mcp` Python SDK.
  @server Path.expand("../../tests/support/mcp_servers/calc_server.py", __DIR__)

  defp calls do
    %{
      "provider" => "script",
      "responses" => [
        %{"tool_calls" => [%{"tool" => "add", "args" => %{"a" => 2, "b" => 40}}]},
        "done"
      ]
    }
  end

  defp add_result(messages) do
    for %{"parts" => parts} <- messages,
        %{"part_kind" => "tool-return", "tool_name" => "add", "content" => c} <- parts,
        do: c
  end

  setup do
    %{w: start_supervised!({Worker, worker_opts()})}
  end

  test "an MCP stdio server's tools are called from an Elixir-defined agent", %{w: w} do
    mcp = %{"MCP" => %{"command" => python(), "args" => [@server]}}

    assert {:ok, "calc"} = AxonPort.define_agent(w, :calc, model: calls(), capabilities: [mcp])

    assert {:ok, %{output: "done", messages: messages}} = AxonPort.run(w, "calc", "add")
    assert add_result(messages) == [42]
  end

  test "an MCP streamable-HTTP server's tools are called from an Elixir-defined agent", %{w: w} do
    port = start_http_mcp(@server)

    mcp = %{"MCP" => %{"url" => "http://127.0.0.1:#{port}/mcp", "headers" => %{"X-Test" => "1"}}}

    assert {:ok, "web"} =
             AxonPort.define_agent(w, :web, model: calls(), capabilities: [mcp], tool_timeout: 30)

    assert {:ok, %{output: "done", messages: messages}} = AxonPort.run(w, "web", "add")
    assert add_result(messages) == [42]
  end
end
