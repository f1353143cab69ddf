defmodule AxonPort.PackagingTest do
  # :axon_port as a dependency of a fresh app: path and git (sparse) deps,
  # `mix axon_port.setup`, `mix axon_port.doctor`, and a `mix release` moved to
  # another directory. Real mix, pip, git and release runs in temp dirs.
  use ExUnit.Case, async: true

  @moduletag :packaging
  @moduletag timeout: 900_000

  @pkg Path.expand("..", __DIR__)
  @repo Path.expand("../..", __DIR__)
  @sample Path.expand("release/sample_app", __DIR__)

  test "the package's launcher is a real file, byte-equal to the repository's priv/axon_port" do
    copy = Path.join(@pkg, "priv/axon_port")
    assert {:ok, %File.Stat{type: :regular}} = File.lstat(copy)
    assert File.read!(copy) == File.read!(Path.join(@repo, "priv/axon_port"))
    assert Bitwise.band(File.stat!(copy).mode, 0o111) != 0
  end

  test "the examples are test support: not compiled into apps that depend on :axon_port" do
    refute Enum.any?(Path.wildcard(Path.join(@pkg, "lib/**/*.ex")), &(&1 =~ "examples"))
    {:ok, mods} = :application.get_key(:axon_port, :modules)
    assert AxonPort.Python in mods and Mix.Tasks.AxonPort.Setup in mods
  end

  @tag :tmp_dir
  test "path dependency: setup, doctor, a worker in the app's tree, a release run from elsewhere",
       %{tmp_dir: tmp} do
    app = Path.join(tmp, "app")
    File.cp_r!(@sample, app)
    env = [{"AXON_PORT_DEP", @pkg}]

    mix!(app, env, ["deps.get"])
    out = mix!(app, env, ["axon_port.setup"])
    # `config :axon_port, ...` in the app is the config of a real dependency
    refute out =~ "is not available"
    assert out =~ "creating venv #{app}/priv/python"
    assert out =~ "axon_port @ file://#{@repo}"
    # idempotent: nothing changed, nothing reinstalled
    assert mix!(app, env, ["axon_port.setup"]) =~ "is up to date"
    # a non-editable install: the venv does not point back into the checkout
    venv_py = Path.join(app, "priv/python/bin/python")

    {where, 0} =
      System.cmd(venv_py, ["-c", "import axon_port; print(axon_port.__file__)"], cd: tmp)

    assert where =~ Path.join(app, "priv/python")

    doctor = mix!(app, env, ["axon_port.doctor", "--module", "json"])
    assert doctor =~ ~r/pydantic-ai-slim:\s+2\./
    assert doctor =~ ~r/module json:\s+ok/
    assert doctor =~ "ping: :ok"
    assert doctor =~ "all good"

    # a missing module is a problem with its fix; the task exits non-zero
    {bad, status} = mix(app, env, ["axon_port.doctor", "--module", "no_such_module_xyz"])
    assert status != 0
    assert bad =~ "Python module no_such_module_xyz does not import"
    assert bad =~ "fix: "

    check = run_check!(app, env)
    assert check.python_tool and check.elixir_tool
    app_file = File.read!(Path.join(app, "_build/prod/lib/axon_port/ebin/axon_port.app"))
    assert app_file =~ "'Elixir.AxonPort.Worker'"
    refute app_file =~ "Examples"
    assert check.venv == Path.join(app, "_build/prod/lib/sample_app/priv/python")

    mix!(app, env, ["release", "--quiet", "--overwrite"])
    rel = Path.join(tmp, "moved/sample_app")
    File.mkdir_p!(Path.dirname(rel))
    File.rename!(Path.join(app, "_build/prod/rel/sample_app"), rel)
    # nothing of the build is left to lean on
    File.rm_rf!(app)

    # epmd is one per host and outlives every node by design: when none runs, the
    # release starts its own from its erts, and that one stays after the release stops.
    # Start the host's first, as a machine that runs Erlang nodes has.
    {_, 0} = System.cmd("epmd", ["-daemon"], stderr_to_stdout: true)
    node = "sample_#{System.unique_integer([:positive])}"
    renv = [{"RELEASE_NODE", node}, {"RELEASE_COOKIE", "axon_port_test"}]
    bin = Path.join(rel, "bin/sample_app")
    {_, 0} = System.cmd(bin, ["daemon"], env: renv, stderr_to_stdout: true)

    check =
      AxonPort.TestHelpers.eventually(
        fn ->
          case System.cmd(bin, ["rpc", encoded_check()], env: renv, stderr_to_stdout: true) do
            {out, 0} -> decode(out)
            _ -> nil
          end
        end,
        60_000,
        "the moved release to answer rpc"
      )

    assert check.python_tool and check.elixir_tool
    assert String.starts_with?(check.venv, rel)
    assert String.starts_with?(check.launcher, rel)

    {_, 0} = System.cmd(bin, ["stop"], env: renv, stderr_to_stdout: true)
    beam = String.to_integer(check.beam_os_pid)
    assert AxonPort.OS.wait_exit(beam, 30_000), "the release's BEAM is still running"
    assert AxonPort.OS.wait_exit(check.worker_os_pid, 10_000), "the worker is still running"

    AxonPort.TestHelpers.eventually(
      fn -> processes_under(rel) == [] end,
      10_000,
      "no process left from the release (running as the wait began: #{inspect(processes_under(rel))})"
    )

    logs = Path.wildcard(Path.join(rel, "tmp/log/erlang.log.*")) |> Enum.map_join(&File.read!/1)
    refute logs =~ "pydantic", "the release log carries Python output:\n#{logs}"
  end

  @tag :tmp_dir
  test "git dependency with sparse: \"mix_fixture\": setup from the configured package, a worker runs",
       %{tmp_dir: tmp} do
    # A git repository holding this checkout's package (working tree, not HEAD).
    repo = Path.join(tmp, "repo")
    File.mkdir_p!(Path.join(repo, "mix_fixture"))

    for f <- ~w(mix.exs lib priv),
        do: File.cp_r!(Path.join(@pkg, f), Path.join(repo, "mix_fixture/#{f}"))

    File.write!(Path.join(repo, "pyproject.toml"), "# not in a sparse checkout\n")
    git!(repo, ["init", "-q"])
    git!(repo, ["add", "."])
    git!(repo, ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "pkg"])

    app = Path.join(tmp, "app")
    File.cp_r!(@sample, app)
    env = [{"AXON_PORT_GIT", "file://#{repo}"}]
    mix!(app, env, ["deps.get"])
    dep = Path.join(app, "deps/axon_port")

    assert File.exists?(Path.join(dep, "mix_fixture/mix.exs")) or
             File.exists?(Path.join(dep, "mix.exs"))

    refute File.exists?(Path.join(dep, "pyproject.toml"))

    # No Python checkout came with the dependency: setup says what to configure.
    {out, status} = mix(app, env, ["axon_port.setup"])
    assert status != 0
    assert out =~ "no Python checkout"
    assert out =~ "package:"

    File.write!(Path.join(app, "config/config.exs"), """
    import Config
    config :axon_port, python: [package: #{inspect(@repo)}, extras: [:anthropic]]
    """)

    out = mix!(app, env, ["axon_port.setup"])
    assert out =~ "axon_port[anthropic] @ file://#{@repo}"
    assert mix!(app, env, ["axon_port.setup"]) =~ "is up to date"

    # a changed input (one more requirement) reinstalls
    File.write!(Path.join(app, "config/config.exs"), """
    import Config
    config :axon_port,
      python: [package: #{inspect(@repo)}, extras: [:anthropic], requirements: ["setuptools"]]
    """)

    assert mix!(app, env, ["axon_port.setup"]) =~
             "installing axon_port[anthropic] @ file://#{@repo} setuptools"

    check = run_check!(app, env)
    assert check.python_tool and check.elixir_tool

    assert String.ends_with?(check.launcher, "deps/axon_port/mix_fixture/priv/axon_port") or
             String.contains?(check.launcher, "_build/prod/lib/axon_port/priv/axon_port")

    assert mix!(app, env, ["axon_port.doctor"]) =~ ~r/anthropic:\s+\d/
  end

  @tag :tmp_dir
  test "offline: setup from a wheel directory with no package index reachable", %{tmp_dir: tmp} do
    # The online half, as a build machine would vendor it: axon_port's wheel and all
    # it needs (with the anthropic extra) in one directory.
    wheels = Path.join(tmp, "wheels")
    py = Path.join(@repo, ".venv/bin/python")

    {out, 0} =
      System.cmd(
        py,
        ["-m", "pip", "wheel", "--quiet", "--wheel-dir", wheels, "#{@repo}[anthropic]"],
        stderr_to_stdout: true
      )

    assert [wheel] = Path.wildcard(Path.join(wheels, "axon_port-*.whl")), out

    app = Path.join(tmp, "app")
    File.cp_r!(@sample, app)

    config = fn links ->
      """
      import Config
      config :axon_port,
        python: [package: #{inspect(wheel)}, extras: [:anthropic], find_links: #{inspect(links)}, no_index: true]
      """
    end

    # No pip configuration (this machine's points at local indexes) and an index
    # that refuses connections: whatever is installed comes from the wheel directory.
    offline = [
      {"AXON_PORT_DEP", @pkg},
      {"PIP_CONFIG_FILE", "/dev/null"},
      {"PIP_FIND_LINKS", nil},
      {"PIP_INDEX_URL", "http://127.0.0.1:9/simple"},
      {"PIP_EXTRA_INDEX_URL", nil}
    ]

    mix!(app, offline, ["deps.get"])

    # The same with an empty wheel directory fails: nothing is fetched from anywhere else.
    File.write!(Path.join(app, "config/config.exs"), config.("../empty"))
    File.mkdir_p!(Path.join(tmp, "empty"))
    {out, status} = mix(app, offline, ["axon_port.setup"])
    assert status != 0 and out =~ "No matching distribution", out

    File.write!(Path.join(app, "config/config.exs"), config.("../wheels"))
    out = mix!(app, offline, ["axon_port.setup"])
    assert out =~ "installing axon_port[anthropic] @ file://#{wheel}"
    assert mix!(app, offline, ["axon_port.setup"]) =~ "is up to date"
    assert mix!(app, offline, ["axon_port.doctor"]) =~ ~r/anthropic:\s+\d/

    check = run_check!(app, offline)
    assert check.python_tool and check.elixir_tool
  end

  # --- helpers --------------------------------------------------------------

  defp encoded_check,
    do: "IO.puts(:erlang.term_to_binary(SampleApp.check()) |> Base.encode64())"

  defp run_check!(app, env), do: decode(mix!(app, env, ["run", "-e", encoded_check()]))

  defp decode(out) do
    line = out |> String.split("\n", trim: true) |> List.last()
    :erlang.binary_to_term(Base.decode64!(line))
  end

  defp mix(app, env, args) do
    env = [{"MIX_ENV", "prod"}, {"AXON_PORT_PYTHON", nil}, {"MIX_EXS", nil} | env]
    System.cmd("mix", args, cd: app, env: env, stderr_to_stdout: true)
  end

  defp mix!(app, env, args) do
    case mix(app, env, args) do
      {out, 0} -> out
      {out, status} -> flunk("mix #{Enum.join(args, " ")} exited #{status}:\n#{out}")
    end
  end

  defp git!(dir, args) do
    {_, 0} = System.cmd("git", args, cd: dir, stderr_to_stdout: true)
  end

  defp processes_under(dir) do
    for cmdline <- Path.wildcard("/proc/[0-9]*/cmdline"),
        {:ok, c} <- [File.read(cmdline)],
        String.contains?(c, dir),
        do: String.replace(c, <<0>>, " ")
  end
end
