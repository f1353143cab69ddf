defmodule AxonPort.MixProject do
  use Mix.Project

  # The Elixir package :axon_port. Add it to an app with
  #
  #     {:axon_port, path: "../axon_port/mix_fixture"}
  #     {:axon_port, git: "https://.../axon_port.git", sparse: "mix_fixture"}
  #
  # then `mix deps.get && mix axon_port.setup`. The launcher priv/axon_port is
  # found at run time from :code.priv_dir(:axon_port) (a release carries it); it
  # is a byte-equal copy of the repository's top-level priv/axon_port.

  def project do
    [
      app: :axon_port,
      version: "0.1.0",
      elixir: "~> 1.14",
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: Mix.env() == :prod,
      deps: [],
      aliases: aliases(),
      package: [files: ~w(lib priv mix.exs)]
    ]
  end

  def application do
    [
      extra_applications: [:logger],
      mod: {AxonPort.Application, []}
    ]
  end

  # The example workflows (AxonPort.Examples.*) are test support: never compiled
  # into the apps that depend on :axon_port.
  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  defp aliases do
    [test: ["compile --warnings-as-errors", "test"]]
  end
end
