defmodule AxonPort.MixProject do
  use Mix.Project

  # The launcher lives at the repository root (`../priv/axon_port`): it finds the
  # project's Python environment and execs `python -m axon_port`. Apps that copy
  # this client point `config :axon_port, launcher: ...` (or the `:launcher`
  # worker option) at their own copy.
  @launcher Path.expand("../priv/axon_port", __DIR__)

  def project do
    [
      app: :axon_port,
      version: "0.1.0",
      elixir: "~> 1.14",
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: Mix.env() == :prod,
      deps: [],
      aliases: aliases()
    ]
  end

  def application do
    [
      extra_applications: [:logger],
      mod: {AxonPort.Application, []},
      env: [launcher: @launcher]
    ]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  defp aliases do
    [test: ["compile --warnings-as-errors", "test"]]
  end
end
