defmodule Mix.Tasks.AxonPort.Setup do
  @shortdoc "Builds the app's Python environment for axon_port workers"

  @moduledoc """
  Builds the Python virtual environment the axon_port worker runs in.

      mix axon_port.setup [--force]

  It creates a venv (by default `priv/python` of your app, so `mix release`
  carries it), then installs into it, **non-editable**:

    * the axon_port Python package — from the dependency's own checkout when
      there is one (the directory above `mix_fixture/`), otherwise from the
      `:package` pip requirement (a `git+https://...` URL, a wheel or a path);
    * the pydantic-ai provider extras named in `:extras`;
    * the pip requirements named in `:requirements`.

  Configure it in `config/config.exs`:

      config :axon_port,
        python: [extras: [:anthropic, :mcp], requirements: ["my-tools==1.2"]]

  The options are documented in `AxonPort.Python`. The task is idempotent: it
  keeps a stamp of its inputs in the venv and reinstalls only when they change
  (`--force` reinstalls anyway). Offline: point `:package` at a local path or
  wheel, `:find_links` at a wheel directory and set `no_index: true`.
  """

  use Mix.Task

  @impl Mix.Task
  def run(argv) do
    {flags, _} = OptionParser.parse!(argv, strict: [force: :boolean])
    Mix.Task.run("loadconfig")
    cfg = AxonPort.Python.config()
    venv = venv_path(cfg)
    base = Keyword.get(cfg, :python, "python3")
    {install, source_hash} = package(cfg)
    reqs = [install | Enum.map(Keyword.get(cfg, :requirements, []), &to_string/1)]
    pip_opts = pip_opts(cfg)

    stamp =
      :erlang.md5(:erlang.term_to_binary({base_id(base), reqs, pip_opts, source_hash}))
      |> Base.encode16(case: :lower)

    stamp_path = Path.join(venv, AxonPort.Python.stamp_file())
    python = Path.join(venv, "bin/python")

    cond do
      !flags[:force] and File.exists?(python) and File.read(stamp_path) == {:ok, stamp} ->
        Mix.shell().info("axon_port.setup: #{venv} is up to date (#{Enum.join(reqs, ", ")})")

      true ->
        unless File.exists?(python) do
          Mix.shell().info("axon_port.setup: creating venv #{venv} with #{base}")
          File.mkdir_p!(Path.dirname(venv))
          cmd!(base, ["-m", "venv", venv])
        end

        File.rm(stamp_path)
        Mix.shell().info("axon_port.setup: installing #{Enum.join(reqs, " ")}")

        cmd!(
          python,
          ["-m", "pip", "install", "--quiet", "--disable-pip-version-check"] ++ pip_opts ++ reqs
        )

        File.write!(stamp_path, stamp)
        Mix.shell().info("axon_port.setup: #{venv} ready (check it with `mix axon_port.doctor`)")
    end
  end

  @doc false
  def venv_path(cfg) do
    rel = Keyword.get(cfg, :venv, "python")

    if Path.type(rel) == :absolute,
      do: rel,
      else: Path.expand(Path.join("priv", rel), project_root())
  end

  defp project_root, do: Path.dirname(Mix.Project.project_file())

  # The axon_port requirement, and a hash of the local source it installs from
  # (so a changed checkout reinstalls).
  defp package(cfg) do
    extras = Enum.map_join(Keyword.get(cfg, :extras, []), ",", &to_string/1)
    extras = if extras == "", do: "", else: "[#{extras}]"

    case cfg[:package] || checkout() do
      nil ->
        Mix.raise("""
        axon_port.setup: the :axon_port dependency has no Python checkout next to it
        (a sparse git dependency?). Tell it where the Python package comes from:

            config :axon_port, python: [package: "git+https://.../axon_port.git"]

        (or a wheel file, or a local path).
        """)

      "git+" <> _ = url ->
        {"axon_port#{extras} @ #{url}", nil}

      spec ->
        path = Path.expand(spec, project_root())

        cond do
          File.exists?(path) -> {"axon_port#{extras} @ file://#{path}", tree_hash(path)}
          # a requirement such as "axon_port==0.1.0": the extras go after the name
          extras != "" -> {String.replace(spec, ~r/^[A-Za-z0-9_.-]+/, "\\0#{extras}"), nil}
          true -> {spec, nil}
        end
    end
  end

  # The Python project the dependency came from: the parent of mix_fixture/,
  # when it holds pyproject.toml and the package sources.
  defp checkout do
    dep_dir =
      if Mix.Project.config()[:app] == :axon_port,
        do: project_root(),
        else: Mix.Project.deps_paths()[:axon_port]

    parent = dep_dir && Path.dirname(dep_dir)

    if parent && File.regular?(Path.join(parent, "pyproject.toml")) &&
         File.dir?(Path.join(parent, "src/axon_port")),
       do: parent
  end

  defp tree_hash(path) do
    files =
      if File.dir?(path) do
        ["pyproject.toml", "setup.py", "src/**/*.{py,c,h,typed}"]
        |> Enum.flat_map(&Path.wildcard(Path.join(path, &1)))
        |> Enum.sort()
      else
        [path]
      end

    Enum.reduce(files, :erlang.md5_init(), fn f, acc ->
      :erlang.md5_update(acc, [f, File.read!(f)])
    end)
    |> :erlang.md5_final()
  end

  defp pip_opts(cfg) do
    links = for dir <- List.wrap(cfg[:find_links]), do: ["--find-links", Path.expand(dir)]
    List.flatten(links) ++ if(cfg[:no_index], do: ["--no-index"], else: [])
  end

  defp base_id(base) do
    case System.find_executable(base) do
      nil -> Mix.raise("axon_port.setup: no base Python #{inspect(base)} on PATH")
      path -> {path, File.read_link(path)}
    end
  end

  defp cmd!(exe, args) do
    case System.cmd(exe, args, stderr_to_stdout: true) do
      {_, 0} ->
        :ok

      {out, status} ->
        Mix.raise(
          "axon_port.setup: `#{Enum.join([exe | args], " ")}` failed (#{status}):\n#{out}"
        )
    end
  end
end
