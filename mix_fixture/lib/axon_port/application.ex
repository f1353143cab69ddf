defmodule AxonPort.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    children = [
      AxonPort.Telemetry,
      # The process-group scope pools use to find workers on every node.
      %{id: :pg, start: {:pg, :start_link, [AxonPort.PG]}},
      # Elixir tools run here, never in the worker GenServer.
      {Task.Supervisor, name: AxonPort.TaskSupervisor},
      # Answers a dead worker's direct callers (it inherits the worker's ETS table).
      AxonPort.Worker.Heir
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: AxonPort.Supervisor)
  end
end
