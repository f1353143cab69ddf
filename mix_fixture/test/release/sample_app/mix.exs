defmodule SampleApp.MixProject do
  use Mix.Project

  # A small app that uses :axon_port the way a team would: one dependency line.
  # test/packaging_test.exs copies it to a temp dir and points the dependency at
  # this checkout, as a path dependency (AXON_PORT_DEP) or as a git dependency
  # with sparse: "mix_fixture" (AXON_PORT_GIT), before building and releasing it.
  def project do
    [
      app: :sample_app,
      version: "0.1.0",
      elixir: "~> 1.14",
      deps: deps(),
      releases: [sample_app: [include_executables_for: [:unix]]]
    ]
  end

  defp deps do
    case System.get_env("AXON_PORT_GIT") do
      nil -> [{:axon_port, path: System.fetch_env!("AXON_PORT_DEP")}]
      url -> [{:axon_port, git: url, sparse: "mix_fixture"}]
    end
  end

  def application do
    [extra_applications: [:logger], mod: {SampleApp.Application, []}]
  end
end
