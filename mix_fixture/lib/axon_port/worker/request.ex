defmodule AxonPort.Worker.Request do
  @moduledoc false
  # One in-flight request of an `AxonPort.Worker`.
  #
  # `from` is the `GenServer.call/3` caller, nil for streams (their consumer,
  # `stream_to`, gets chunks under `ref`, and its terminal message through
  # `watcher`). `ref` is also the key a caller cancels by. `monitor` watches the
  # stream's watcher (which exits with the consumer), or a `run` or `complete` caller, so the request is cancelled when
  # it dies. For runs, `tools` maps tool names to Elixir handlers, `deps` are the run's
  # dependencies and `tasks` the tool tasks still running (`task ref => pid`);
  # for `define_agent`, `local` is what stays in Elixir (handlers, default deps).

  defstruct [
    :id,
    :op,
    :from,
    :stream_to,
    :ref,
    :monitor,
    :watcher,
    :agent,
    :started,
    :local,
    tools: %{},
    deps: nil,
    tasks: %{}
  ]

  @type t :: %__MODULE__{
          id: integer(),
          op: atom(),
          from: GenServer.from() | nil,
          stream_to: pid() | nil,
          ref: reference() | nil,
          monitor: reference() | nil,
          watcher: pid() | nil,
          agent: String.t() | nil,
          started: integer(),
          local: map() | nil,
          tools: %{optional(String.t()) => term()},
          deps: map() | nil,
          tasks: %{optional(reference()) => pid()}
        }
end
