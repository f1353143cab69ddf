defmodule AxonPort.Worker.State do
  @moduledoc false
  # The state of an `AxonPort.Worker` GenServer.
  #
  #   * `port`, `os_pid` — the worker's port and OS process;
  #   * `ready`, `max_frame` — its `ready` frame and frame limit;
  #   * `pending` — in-flight requests, `id => AxonPort.Worker.Request`;
  #   * `refs` — `ref => id` for every pending request (a stream's ref, or the
  #     key a caller cancels by after its timeout);
  #   * `tasks` — running Elixir tool tasks, `task ref => {run_id, call_id}`;
  #   * `agents` — the Elixir-side parts (handlers, default deps) of agents;
  #   * `task_sup` — where tool tasks run; `kill_grace` — ms to wait for the OS
  #     process after EOF; `pool_strategy` — the `AxonPort.Pool` strategy of the
  #     pool this worker serves (answered to other nodes' `pick/2`);
  #   * `tab`, `ctr` — the id table and counter of the direct path
  #     (`AxonPort.Worker.Direct`): `id => {caller, mref}` or `id => :slow`;
  #   * `heir_mon` — the monitor of the table's heir (`AxonPort.Worker.Heir`).

  alias AxonPort.Worker.Request

  @enforce_keys [:port, :os_pid]
  defstruct [
    :port,
    :os_pid,
    :ready,
    :max_frame,
    :pool_strategy,
    :tab,
    :ctr,
    :heir_mon,
    pending: %{},
    refs: %{},
    tasks: %{},
    agents: %{},
    task_sup: AxonPort.TaskSupervisor,
    kill_grace: 2_000
  ]

  @type t :: %__MODULE__{
          port: port(),
          os_pid: non_neg_integer(),
          ready: map() | nil,
          max_frame: pos_integer() | nil,
          pool_strategy: atom() | nil,
          tab: :ets.tid() | nil,
          ctr: :atomics.atomics_ref() | nil,
          heir_mon: reference() | nil,
          pending: %{optional(integer()) => Request.t()},
          refs: %{optional(reference()) => integer()},
          tasks: %{optional(reference()) => {integer(), term()}},
          agents: %{optional(String.t()) => map()},
          task_sup: GenServer.server(),
          kill_grace: non_neg_integer()
        }
end
