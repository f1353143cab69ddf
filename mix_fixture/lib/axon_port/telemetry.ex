defmodule AxonPort.Telemetry do
  @moduledoc """
  Telemetry-shaped events without a dependency on `:telemetry`.

  Events (all emitted by the worker process that serves the run):

    * `[:axon_port, :run, :start]` — measurements `%{system_time, monotonic_time}`;
      metadata `%{worker, os_pid, request_id, ref, agent, stream}`.
    * `[:axon_port, :run, :stop]` — the run returned a `result`. Measurements
      `%{duration, input_tokens, output_tokens, total_tokens, requests}` (native
      time units for `duration`; token counts from the run's usage, 0 when
      absent); metadata as for `:start` plus `usage` (the usage map).
    * `[:axon_port, :run, :exception]` — the run ended without a result: an
      `error` frame (including `cancelled` and `timeout`), or the worker died.
      Measurements `%{duration}`; metadata plus `kind: :error`,
      `reason` (an `AxonPort.Error` or `{:worker_exit, status}`) and
      `stacktrace: []`.

  `execute/3` calls `:telemetry.execute/3` when the `:telemetry` library is
  loaded, and also every handler attached with `attach/4` — so tests (and apps
  without `:telemetry`) can observe the events. Handlers run in the worker
  process: keep them fast and never call the worker from one. A handler that
  raises is detached and logged, like `:telemetry` does.
  """

  require Logger

  @table __MODULE__

  @type event :: [atom()]
  @type handler :: (event(), map(), map(), term() -> any())

  use GenServer

  @doc false
  # A tiny process that only owns the handler table (started by AxonPort.Application).
  def start_link(_opts \\ []), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @impl true
  def init(nil) do
    :ets.new(@table, [:named_table, :public, :bag, read_concurrency: true])
    {:ok, nil}
  end

  @doc """
  Attaches `fun` under `id` for the given events (a local alternative to
  `:telemetry.attach_many/4`). Returns `{:error, :already_exists}` for a taken id.
  """
  @spec attach(term(), [event()], handler(), term()) :: :ok | {:error, :already_exists}
  def attach(id, events, fun, config \\ nil) when is_function(fun, 4) do
    if :ets.match_object(@table, {:_, id, :_, :_}) != [] do
      {:error, :already_exists}
    else
      :ets.insert(@table, for(e <- events, do: {e, id, fun, config}))
      :ok
    end
  end

  @doc "Detaches the handler `id` (attached with `attach/4`)."
  @spec detach(term()) :: :ok
  def detach(id) do
    :ets.match_delete(@table, {:_, id, :_, :_})
    :ok
  end

  @doc "Emits `event` to `:telemetry` (when loaded) and to local handlers."
  @spec execute(event(), map(), map()) :: :ok
  def execute(event, measurements, metadata) do
    if telemetry_loaded?() do
      # apply/3: no compile-time reference to an optional library.
      apply(:telemetry, :execute, [event, measurements, metadata])
    end

    handlers =
      try do
        :ets.lookup(@table, event)
      rescue
        ArgumentError -> []
      end

    for {^event, id, fun, config} <- handlers do
      try do
        fun.(event, measurements, metadata, config)
      catch
        kind, reason ->
          Logger.error(
            "axon_port telemetry handler #{inspect(id)} failed and was detached: " <>
              Exception.format(kind, reason, __STACKTRACE__)
          )

          detach(id)
      end
    end

    :ok
  end

  @doc """
  Re-checks whether the `:telemetry` library is loaded (the answer is cached
  after the first event; call this if you load it later at run time).
  """
  @spec refresh() :: boolean()
  def refresh do
    :persistent_term.erase({__MODULE__, :telemetry?})
    telemetry_loaded?()
  end

  defp telemetry_loaded? do
    case :persistent_term.get({__MODULE__, :telemetry?}, nil) do
      nil ->
        loaded = Code.ensure_loaded?(:telemetry)
        :persistent_term.put({__MODULE__, :telemetry?}, loaded)
        loaded

      loaded ->
        loaded
    end
  end
end
