defmodule Mix.Tasks.AxonPort.Doctor do
  @shortdoc "Checks what an axon_port worker will run, then starts one and pings it"

  @moduledoc """
  Prints what an axon_port worker will run — launcher, venv, interpreter,
  the axon_port, pydantic-ai and provider package versions, the Python modules
  it loads — then starts a worker and pings it.

      mix axon_port.doctor [--module my_tools ...]

  `--module` names a Python module your workers load (their `:modules`
  option); the doctor imports it and starts its worker with it. Every problem
  found is printed with the command that fixes it, and the task then exits
  non-zero.
  """

  use Mix.Task

  @packages ~w(axon_port pydantic-ai-slim pydantic openai anthropic google-genai groq mistralai
               cohere boto3 huggingface-hub mcp fastmcp-slim)

  @impl Mix.Task
  def run(argv) do
    {flags, _} = OptionParser.parse!(argv, strict: [module: :keep])
    modules = Keyword.get_values(flags, :module)
    Mix.Task.run("app.start")

    launcher = AxonPort.Python.launcher()
    venv = AxonPort.Python.venv()
    python = (venv && Path.join(venv, "bin/python")) || System.get_env("AXON_PORT_PYTHON")

    info("launcher", launcher)
    info("venv", venv || "(none; falling back to $AXON_PORT_PYTHON)")
    info("python", python || "(none)")

    problems =
      check_launcher(launcher) ++
        check_python(python, modules) ++
        if(python, do: check_worker(modules), else: [])

    case problems do
      [] ->
        Mix.shell().info("\naxon_port.doctor: all good")

      _ ->
        Mix.shell().error("\naxon_port.doctor: #{length(problems)} problem(s):")

        for {problem, fix} <- problems,
            do: Mix.shell().error("  * #{problem}\n    fix: #{fix}")

        Mix.raise("axon_port.doctor found problems")
    end
  end

  defp info(key, value), do: Mix.shell().info(String.pad_trailing(key <> ":", 20) <> value)

  defp check_launcher(launcher) do
    case File.stat(launcher) do
      {:ok, %{type: :regular, mode: mode}} when Bitwise.band(mode, 0o111) != 0 ->
        []

      _ ->
        [
          {"the launcher #{launcher} is missing or not executable",
           "mix deps.get && mix deps.compile axon_port (or fix `config :axon_port, launcher:`)"}
        ]
    end
  end

  defp check_python(nil, _modules),
    do: [{"no Python: no venv and AXON_PORT_PYTHON is unset", "mix axon_port.setup"}]

  defp check_python(python, modules) do
    script = """
    import importlib, importlib.metadata as md, sys
    print("interpreter", sys.executable, sys.version.split()[0])
    for p in sys.argv[1].split():
        try:
            print("package", p, md.version(p))
        except md.PackageNotFoundError:
            print("package", p, "-")
    for m in sys.argv[2:]:
        try:
            importlib.import_module(m)
            print("module", m, "ok")
        except BaseException as e:
            print("module", m, "FAILED:", type(e).__name__, str(e).replace(chr(10), " "))
    """

    case System.cmd(python, ["-c", script, Enum.join(@packages, " ") | modules],
           stderr_to_stdout: true
         ) do
      {out, 0} ->
        out |> String.split("\n", trim: true) |> Enum.flat_map(&report_line/1)

      {out, status} ->
        [{"#{python} does not run (exit #{status}): #{String.trim(out)}", "mix axon_port.setup"}]
    end
  rescue
    e in ErlangError ->
      [{"#{python} cannot be started (#{inspect(e.original)})", "mix axon_port.setup"}]
  end

  defp report_line("interpreter " <> rest) do
    info("interpreter", rest)
    []
  end

  defp report_line("package " <> rest) do
    case String.split(rest, " ", parts: 2) do
      [pkg, "-"] when pkg in ["axon_port", "pydantic-ai-slim"] ->
        info(pkg, "MISSING")
        [{"Python package #{pkg} is not installed", "mix axon_port.setup --force"}]

      [_pkg, "-"] ->
        []

      [pkg, version] ->
        info(pkg, version)
        []
    end
  end

  defp report_line("module " <> rest) do
    [m, status] = String.split(rest, " ", parts: 2)
    info("module #{m}", status)

    if status == "ok",
      do: [],
      else: [
        {"Python module #{m} does not import: #{status}",
         "add the package that provides it to `config :axon_port, python: [requirements: [...]]` " <>
           "and run mix axon_port.setup (or fix the worker's PYTHONPATH)"}
      ]
  end

  defp report_line(other) do
    Mix.shell().info(other)
    []
  end

  defp check_worker(modules) do
    Process.flag(:trap_exit, true)

    case AxonPort.Worker.start_link(modules: modules) do
      {:ok, w} ->
        result = AxonPort.ping(w)

        info(
          "worker",
          "started, os pid #{AxonPort.Worker.info(w).os_pid}, ping: #{inspect(result)}"
        )

        GenServer.stop(w)

        if result == :ok,
          do: [],
          else: [
            {"the worker does not answer ping: #{inspect(result)}", "mix axon_port.setup --force"}
          ]

      {:error, reason} ->
        info("worker", "FAILED to start: #{inspect(reason)}")
        [{"a worker does not start: #{inspect(reason)}", "mix axon_port.setup --force"}]
    end
  end
end
