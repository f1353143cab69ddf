defmodule AxonPort.Approvals do
  @moduledoc """
  Human approval of tool calls, and tool calls answered later (pydantic-ai's
  deferred tools).

  A run whose model calls a tool declared with `requires_approval: true` (an
  Elixir tool, or a Python tool registered with `requires_approval=True`), or a
  tool that raises `CallDeferred`/`ApprovalRequired`, does not fail: it returns

      {:ok, %{output: nil, deferred: %{"approvals" => [call], "calls" => [call]}, messages: msgs}}

  where each `call` is `%{"tool_call_id" => id, "tool_name" => name, "args" => map}`.
  Decide, then resume with the conversation so far (earlier history plus `msgs`):

      {:ok, done} =
        AxonPort.resume(w, "teller", history ++ msgs,
          approvals: %{"t1" => true, "t2" => %{message: "Too much for one day."}})

  Decisions (`:approvals`, by `tool_call_id`): `true` approves, `false` or
  `%{message: why}` denies (the model sees `why`), `%{override_args: map}`
  approves with other arguments. `:calls` answers deferred calls by id with the
  tool's result (`%{error: message}` sends a retry to the model instead).
  """

  @doc """
  Resumes a run that ended with `deferred`: `history` is every message so far
  (a list, or the deferred run's result, whose `messages` are then used alone).
  Options: `:approvals`, `:calls` (see the module doc) and any `AxonPort.run/4`
  option. Returns what `AxonPort.run/4` returns (possibly `deferred` again).
  """
  @spec resume(
          AxonPort.target(),
          String.t() | atom() | map() | keyword(),
          list() | AxonPort.History.t() | map(),
          keyword()
        ) ::
          {:ok, AxonPort.run_result()} | {:error, AxonPort.reason()}
  def resume(target, agent, history, opts \\ []) do
    {decisions, opts} = Keyword.split(opts, [:approvals, :calls])

    history =
      case history do
        %AxonPort.History{} -> history
        %{messages: messages} -> messages
        list when is_list(list) -> list
      end

    results = Map.new(decisions, fn {key, value} when is_map(value) -> {key, value} end)

    opts = opts |> Keyword.put(:history, history) |> Keyword.put(:deferred_tool_results, results)
    AxonPort.run(target, agent, nil, opts)
  end
end
