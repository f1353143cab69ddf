defmodule AxonPort.Python do
  @moduledoc """
  Where the worker's Python comes from: the launcher and the app's virtual
  environment, resolved at run time (never baked in at compile time), and the
  `config :axon_port, python: [...]` options that `mix axon_port.setup` reads.

  ## Options (`config :axon_port, python: [...]`)

    * `:venv` — where the virtual environment lives. A relative path is
      relative to the priv dir of `:otp_app` (default `"python"`, i.e.
      `priv/python` of your app, which `mix release` carries); an absolute path
      is used as is.
    * `:otp_app` — the application whose priv dir holds the venv. Default: at
      build time the current mix project; at run time the loaded application
      whose `priv/python` holds a venv made by `mix axon_port.setup`.
    * `:extras` — pydantic-ai provider extras of the axon_port Python package,
      e.g. `[:anthropic, :google, :mcp]` (see docs/agents.md "Models").
    * `:requirements` — more pip requirements, e.g. `["my-tools==1.2"]`.
    * `:package` — the pip requirement for axon_port itself when the dependency
      has no Python checkout (a sparse git dependency): a `git+https://...` URL,
      a wheel file or a local path. Default: the checkout the dependency came
      from.
    * `:find_links` — a directory of wheels (`pip --find-links`).
    * `:no_index` — `true` to install offline from `:find_links` and local
      paths only (`pip --no-index`).
    * `:python` — the base interpreter that creates the venv (default
      `"python3"`). The target machine of a release needs the same base Python
      at the same path.
  """

  @keys [:venv, :otp_app, :extras, :requirements, :package, :find_links, :no_index, :python]

  @doc "The validated `config :axon_port, python: [...]` options."
  @spec config() :: keyword()
  def config do
    Application.get_env(:axon_port, :python, [])
    |> Keyword.validate!(@keys)
  end

  @doc """
  The launcher: `config :axon_port, launcher: ...` if set, else
  `priv/axon_port` of the `:axon_port` application, found at run time.
  """
  @spec launcher() :: Path.t()
  def launcher do
    Application.get_env(:axon_port, :launcher) ||
      Path.join(priv_dir!(:axon_port), "axon_port")
  end

  @doc """
  The virtual environment the worker should use at run time, or `nil` when
  none is configured or found (the launcher then falls back to
  `$AXON_PORT_PYTHON`).
  """
  @spec venv() :: Path.t() | nil
  def venv do
    cfg = config()
    rel = Keyword.get(cfg, :venv, "python")

    cond do
      Path.type(rel) == :absolute ->
        rel

      app = cfg[:otp_app] ->
        with {:ok, dir} <- priv_dir(app), do: Path.join(dir, rel), else: (_ -> nil)

      true ->
        Enum.find_value(Application.loaded_applications(), fn {app, _, _} ->
          with {:ok, dir} <- priv_dir(app),
               path = Path.join(dir, rel),
               true <- File.exists?(Path.join(path, stamp_file())) do
            path
          else
            _ -> nil
          end
        end)
    end
  end

  @doc "The file `mix axon_port.setup` writes into the venv: a stamp of its inputs."
  @spec stamp_file() :: String.t()
  def stamp_file, do: ".axon_port-setup"

  @doc "The environment the launcher is spawned with (`AXON_PORT_VENV` when a venv is known)."
  @spec launcher_env() :: [{String.t(), String.t()}]
  def launcher_env do
    case venv() do
      nil -> []
      path -> [{"AXON_PORT_VENV", path}]
    end
  end

  defp priv_dir(app) do
    case :code.priv_dir(app) do
      {:error, _} -> :error
      dir -> {:ok, List.to_string(dir)}
    end
  end

  defp priv_dir!(app) do
    case priv_dir(app) do
      {:ok, dir} -> dir
      :error -> raise ArgumentError, "application #{inspect(app)} is not loaded (no priv dir)"
    end
  end
end
