defmodule SampleApp.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    children = [
      {AxonPort.Worker,
       name: SampleApp.AI,
       modules: ["sample_tools"],
       env: %{"PYTHONPATH" => Application.app_dir(:sample_app, "priv/py")},
       agents: [{"shop", SampleApp.spec()}]}
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: SampleApp.Supervisor)
  end
end
