defmodule AxonPort.Worker.Heir do
  @moduledoc false
  # Answers the direct callers a worker GenServer leaves behind when it dies.
  #
  # A direct caller (`AxonPort.Worker.Direct`) does not monitor the worker: a
  # monitor and its demonitor are two signals that each wake the worker process,
  # on every call. Instead each worker's table of waiting callers names this
  # process as its ETS heir, and this process monitors each worker once, for
  # its life. When a worker dies, by whatever means (killed, crashed, its node's
  # supervisor stopping it), the table comes here (`ETS-TRANSFER`) and the exit
  # reason comes with the monitor's `DOWN`, in either order. Then `close/3`:
  #
  #   1. marks the table closed with the reason (`{:"$closed", {:closed, reason}}`);
  #   2. answers every direct caller whose entry it can still `:ets.take/2` with
  #      `{:error, {:worker_down, reason}}` (whoever takes an entry answers it);
  #   3. withdraws the worker's direct route and deletes the table 5 s later.
  #
  # A caller checks for the mark *after* inserting its entry, so an entry is
  # either inserted before the mark (then step 2 finds it) or sees the mark (then
  # the caller takes its own entry and answers itself). GenServer-path
  # reservations (`{id, :slow}`) are left alone: those callers' `GenServer.call`
  # exits with the worker.
  #
  # Each worker monitors this process in turn. If it dies, the application's
  # supervisor restarts it, and every worker withdraws its direct route until
  # it has named the new heir in its table (`:ets.setopts/2`) and asked it to
  # watch it (`AxonPort.Worker`'s `rearm_heir`).
  use GenServer

  @closed :"$closed"
  @keep_ms 5_000

  @doc false
  def start_link(_opts), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @doc false
  # The heir's pid, or nil when the application (and so the heir) is not running.
  @spec whereis() :: pid() | nil
  def whereis, do: Process.whereis(__MODULE__)

  @doc false
  # Called by a worker that made `heir` the heir of its table: watch it.
  @spec watch(pid(), pid()) :: :ok
  def watch(heir, worker), do: GenServer.cast(heir, {:watch, worker})

  @doc false
  # The reason a closed table's worker died, or nil while it is open. A table
  # that is already gone counts as closed, reason `:noproc`.
  @spec closed(:ets.tid()) :: term() | nil
  def closed(tab) do
    case :ets.lookup(tab, @closed) do
      [{_, {:closed, reason}}] -> reason
      [] -> nil
    end
  rescue
    ArgumentError -> :noproc
  end

  @impl true
  def init(nil), do: {:ok, %{reasons: %{}, tables: %{}}}

  @impl true
  def handle_cast({:watch, worker}, state) do
    Process.monitor(worker)
    {:noreply, state}
  end

  @impl true
  def handle_info({:DOWN, _mref, :process, worker, reason}, state) do
    case Map.pop(state.tables, worker) do
      {nil, _} -> {:noreply, put_in(state.reasons[worker], reason)}
      {tab, tables} -> {:noreply, close(tab, worker, reason, %{state | tables: tables})}
    end
  end

  def handle_info({:"ETS-TRANSFER", tab, worker, _data}, state) do
    case Map.pop(state.reasons, worker) do
      {nil, _} -> {:noreply, put_in(state.tables[worker], tab)}
      {reason, reasons} -> {:noreply, close(tab, worker, reason, %{state | reasons: reasons})}
    end
  end

  def handle_info({:drop, tab}, state) do
    _ = :ets.delete(tab)
    {:noreply, state}
  end

  defp close(tab, worker, reason, state) do
    :ets.insert(tab, {@closed, {:closed, reason}})

    for {id, {caller, tag}} when is_pid(caller) <- :ets.tab2list(tab) do
      case :ets.take(tab, id) do
        [_] -> send(caller, {tag, {:error, {:worker_down, reason}}})
        [] -> :ok
      end
    end

    AxonPort.Worker.Direct.unpublish(worker)
    Process.send_after(self(), {:drop, tab}, @keep_ms)
    state
  end
end
