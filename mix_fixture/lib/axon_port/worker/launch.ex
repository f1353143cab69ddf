defmodule AxonPort.Worker.Launch do
  # Bringing a worker's OS process up and down: the launcher and its port
  # options, the startup handshake, and closing and reaping.
  #
  # Up: `open/1` spawns the launcher with `spawn_executable` (never a shell),
  # `{:packet, 4}`, `:exit_status` and, in `:fds` mode, `:nouse_stdio` with
  # `--fds 3,4`. `await_ready/2` then waits for the `ready` frame and
  # `define_agents/2` defines the startup agents synchronously — both before the
  # GenServer serves anything, so they read the port's messages with a selective
  # `receive` in `init/1`.
  #
  # Down: `close_and_reap/1` closes the port (EOF: the worker exits on its own)
  # and `kill -9`s the OS process only if it lingers past `:kill_grace`.
  #
  # Internal to `AxonPort.Worker`; runs in the worker process.
  @moduledoc false

  require Logger

  alias AxonPort.Error
  alias AxonPort.Worker.{Events, Wire}

  @doc """
  The launcher: the `:launcher` option, else `config :axon_port, launcher: ...`,
  else `priv/axon_port` of the `:axon_port` application, resolved at run time.
  """
  @spec launcher(keyword()) :: Path.t()
  def launcher(opts), do: Keyword.get_lazy(opts, :launcher, &AxonPort.Python.launcher/0)

  @doc """
  Spawns `launcher` with the port options the worker options ask for.

  Returns `{:error, reason}` (e.g. `:enoent`) instead of raising when the port
  cannot be opened.
  """
  @spec open(Path.t(), keyword()) :: {:ok, port()} | {:error, term()}
  def open(launcher, opts) do
    port_opts =
      [:binary, {:packet, 4}, :exit_status, :hide, args: worker_args(opts)] ++
        if(Keyword.get(opts, :mode, :fds) == :fds, do: [:nouse_stdio], else: []) ++
        env_opt(launch_env(Keyword.get(opts, :env, [])))

    open_port(launcher, port_opts)
  end

  defp open_port(launcher, port_opts) do
    {:ok, Port.open({:spawn_executable, launcher}, port_opts)}
  rescue
    e in ErlangError -> {:error, e.original}
    e in ArgumentError -> {:error, Exception.message(e)}
  end

  defp worker_args(opts) do
    mode = if Keyword.get(opts, :mode, :fds) == :fds, do: ["--fds", "3,4"], else: []

    ["--codec", "etf"] ++
      mode ++
      Enum.flat_map(Keyword.get(opts, :modules, []), &["--module", to_string(&1)]) ++
      flag(opts, :max_frame, "--max-frame") ++
      flag(opts, :max_inflight, "--max-inflight") ++
      flag(opts, :idle_spin_us, "--idle-spin-us") ++
      flag(opts, :log_level, "--log-level") ++
      Enum.map(Keyword.get(opts, :args, []), &to_string/1)
  end

  defp flag(opts, key, name) do
    case Keyword.fetch(opts, key) do
      {:ok, v} -> [name, to_string(v)]
      :error -> []
    end
  end

  # The app's venv (`mix axon_port.setup`) reaches the launcher as AXON_PORT_VENV,
  # unless the caller's own :env sets that variable.
  defp launch_env(env) do
    env = Enum.map(env, fn {k, v} -> {to_string(k), v} end)

    if List.keymember?(env, "AXON_PORT_VENV", 0),
      do: env,
      else: AxonPort.Python.launcher_env() ++ env
  end

  defp env_opt([]), do: []

  defp env_opt(env) do
    [env: Enum.map(env, fn {k, v} -> {to_charlist(k), v && to_charlist(v)} end)]
  end

  @doc """
  Waits up to `timeout` ms for the worker's `ready` frame (logging `log` frames
  meanwhile) and records it and its `max_frame` limit in `state`.

  Errors: `:ready_timeout`, `{:worker_exit, status_or_reason}`,
  `{:unsupported_protocol, ready}`, `{:unexpected_frame, decoded}`.
  """
  @spec await_ready(map(), timeout()) :: {:ok, map()} | {:error, term()}
  def await_ready(%{port: port} = state, timeout) do
    deadline = deadline(timeout)

    receive do
      {^port, {:data, bin}} ->
        case AxonPort.Protocol.decode(bin) do
          {:ok, %{type: :ready, protocol: 1} = ready} ->
            limits = Map.get(ready, :limits) || %{}
            {:ok, %{state | ready: ready, max_frame: limits["max_frame"]}}

          {:ok, %{type: :ready} = ready} ->
            {:error, {:unsupported_protocol, ready}}

          {:ok, %{type: :log} = log} ->
            Events.log(log, state.os_pid)
            await_ready(state, remaining(deadline))

          other ->
            {:error, {:unexpected_frame, other}}
        end

      {^port, {:exit_status, status}} ->
        {:error, {:worker_exit, status}}

      {:EXIT, ^port, reason} ->
        {:error, {:worker_exit, reason}}
    after
      remaining(deadline) -> {:error, :ready_timeout}
    end
  end

  defp deadline(:infinity), do: :infinity
  defp deadline(ms), do: System.monotonic_time(:millisecond) + ms

  defp remaining(:infinity), do: :infinity
  defp remaining(d), do: max(d - System.monotonic_time(:millisecond), 0)

  @doc """
  Defines the `:agents` and `:workflows` agents of `opts`, one after the other,
  each within `:define_timeout` (default 30 s), and records their Elixir-side
  parts in `state.agents`.

  Synchronous (nothing else is served yet), so the first run after
  `start_link/1` — or after a restart — finds them. Errors:
  `{:define_agent_failed, name, %AxonPort.Error{}}`, `:define_timeout`,
  `{:worker_exit, status_or_reason}`.
  """
  @spec define_agents(map(), keyword()) :: {:ok, map()} | {:error, term()}
  def define_agents(state, opts) do
    agents =
      Keyword.get(opts, :agents, []) ++
        Enum.flat_map(Keyword.get(opts, :workflows, []), & &1.__agents__())

    timeout = Keyword.get(opts, :define_timeout, 30_000)

    Enum.reduce_while(agents, {:ok, state}, fn {name, spec}, {:ok, state} ->
      {wire_spec, local} = AxonPort.Spec.to_wire(spec)
      name = to_string(name)
      id = Wire.new_id()

      Wire.send_frame(
        state,
        Wire.encode(%{op: :define_agent, id: id, name: name, spec: wire_spec})
      )

      case await_reply(state, id, deadline(timeout)) do
        {:ok, %{type: :result}} ->
          {:cont, {:ok, put_in(state.agents[name], local)}}

        {:ok, %{type: :error, error: err}} ->
          {:halt, {:error, {:define_agent_failed, name, Error.from_wire(err)}}}

        {:error, reason} ->
          {:halt, {:error, reason}}
      end
    end)
  end

  defp await_reply(%{port: port} = state, id, deadline) do
    receive do
      {^port, {:data, bin}} ->
        case AxonPort.Protocol.decode(bin) do
          {:ok, %{id: ^id, type: type} = frame} when type in [:result, :error] ->
            {:ok, frame}

          {:ok, %{type: :log} = log} ->
            Events.log(log, state.os_pid)
            await_reply(state, id, deadline)

          _other ->
            await_reply(state, id, deadline)
        end

      {^port, {:exit_status, status}} ->
        {:error, {:worker_exit, status}}

      {:EXIT, ^port, reason} ->
        {:error, {:worker_exit, reason}}
    after
      remaining(deadline) -> {:error, :define_timeout}
    end
  end

  @doc """
  Closes the port — the worker sees EOF and exits on its own — and kills the OS
  process only if it is still alive `kill_grace` ms later. Always `:ok`.
  """
  @spec close_and_reap(%{
          required(:port) => port(),
          required(:os_pid) => non_neg_integer(),
          required(:kill_grace) => non_neg_integer(),
          optional(atom()) => term()
        }) :: :ok
  def close_and_reap(%{port: port, os_pid: os_pid, kill_grace: grace}) do
    try do
      Port.close(port)
    rescue
      ArgumentError -> :ok
    end

    unless AxonPort.OS.wait_exit(os_pid, grace) do
      Logger.warning("axon_port worker #{os_pid} still alive #{grace} ms after EOF; killing it")
      AxonPort.OS.kill(os_pid)
      AxonPort.OS.wait_exit(os_pid, 1_000)
    end

    :ok
  end
end
