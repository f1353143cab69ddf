defmodule AxonPort.Worker do
  @moduledoc """
  A GenServer that owns one `python -m axon_port` worker process through a port.

  ## Theory of operation

  The worker is spawned with `spawn_executable` on the launcher (`priv/axon_port`,
  which `exec`s Python, so the port's OS pid is the worker's pid), `{:packet, 4}`
  framing, ETF payloads and, by default, `:nouse_stdio` (frames on fds 3 and 4,
  so nothing the Python side prints can reach the frame stream). `init/1` waits
  for the `ready` frame (`:ready_timeout`) and then defines the agents of the
  `:agents` and `:workflows` options, so `start_link/1` returns a worker that is
  ready to serve — and, because a supervisor restarts a worker through the same
  `init/1`, agents are defined again after every restart.

  Callers encode their own request frames (in their own process, with an id from
  `System.unique_integer/1`) and hand them over with `GenServer.call/3`; the
  worker writes the frame, keeps `%{id => request}` and answers with
  `GenServer.reply/2` when the terminal frame (`result`, `error` or `pong`)
  arrives. Replies come in any order. A caller that gives up (its timeout) sends
  `cancel`; a streaming consumer that dies gets its run cancelled too.

  `tool_call` frames for tools implemented in Elixir run in tasks under a
  `Task.Supervisor` (never in this process); their results are sent back as
  `tool_result` frames.

  Two distinct ends, as in muontrap: `{port, {:exit_status, n}}` means the OS
  process exited; `{:EXIT, port, reason}` means the port itself broke. Either way
  every pending caller gets `{:error, {:worker_exit, status_or_reason}}` at once
  and this GenServer stops, so its supervisor starts a fresh worker.
  `terminate/2` closes the port (the worker sees EOF and exits) and kills the OS
  process if it is still there after `:kill_grace` ms.

  This module is the transport; the user-facing API (retries, sessions, pools)
  is `AxonPort`.
  """

  use GenServer
  require Logger

  alias AxonPort.{Error, Telemetry}

  @type server :: GenServer.server()

  @typedoc "Why a request failed without an `error` frame."
  @type failure ::
          {:worker_exit, non_neg_integer() | term()}
          | {:worker_down, term()}
          | :noproc

  @type option ::
          {:name, GenServer.name()}
          | {:launcher, Path.t()}
          | {:mode, :fds | :stdio}
          | {:modules, [String.t()]}
          | {:env, %{optional(String.t()) => String.t()} | [{String.t(), String.t()}]}
          | {:args, [String.t()]}
          | {:log_level, :debug | :info | :warning | :error}
          | {:max_frame, pos_integer()}
          | {:max_inflight, pos_integer()}
          | {:ready_timeout, timeout()}
          | {:define_timeout, timeout()}
          | {:kill_grace, non_neg_integer()}
          | {:agents, [{atom() | String.t(), map() | keyword()}]}
          | {:workflows, [module()]}
          | {:pool, term()}
          | {:task_supervisor, GenServer.server()}

  defmodule Request do
    @moduledoc false
    # One in-flight request. `from` is nil for streams (their consumer gets
    # messages instead); `tools` maps tool names to Elixir handlers for runs.
    defstruct [
      :id,
      :op,
      :from,
      :stream_to,
      :ref,
      :monitor,
      :agent,
      :started,
      :local,
      tools: %{},
      deps: nil,
      tasks: %{}
    ]
  end

  # ---------------------------------------------------------------------------
  # Client side (used by AxonPort; callable directly)

  @doc """
  Starts a worker linked to the caller and returns once it is ready.

  Options:

    * `:id` — the child spec id (default `AxonPort.Worker`; give each worker of
      one supervisor its own).
    * `:name` — register the GenServer (use one under a supervisor, so callers
      reach the restarted worker).
    * `:launcher` — the executable to spawn; defaults to
      `Application.get_env(:axon_port, :launcher)` (the repo's `priv/axon_port`).
    * `:mode` — `:fds` (default; `:nouse_stdio` and `--fds 3,4`) or `:stdio`.
    * `:modules` — Python modules the worker imports (`--module`), which register
      functions, tools and agents.
    * `:env` — extra environment variables for the worker (e.g. `PYTHONPATH`).
    * `:log_level`, `:max_frame`, `:max_inflight`, `:args` — passed on the
      worker's command line.
    * `:agents` — `[{name, spec}]` defined on the worker at start (see
      `AxonPort.define_agent/3`), `:workflows` — modules that
      `use AxonPort.Workflow`, whose agents are defined likewise.
    * `:ready_timeout` (15 s), `:define_timeout` (30 s), `:kill_grace` (2 s).
    * `:pool` — join the `AxonPort.Pool` group of that name.
    * `:task_supervisor` — where Elixir tools run (default `AxonPort.TaskSupervisor`).
  """
  @spec start_link([option()]) :: GenServer.on_start()
  def start_link(opts \\ []) do
    {gen_opts, opts} = Keyword.split(opts, [:name])
    GenServer.start_link(__MODULE__, opts, gen_opts)
  end

  @doc false
  def child_spec(opts) do
    %{
      id: Keyword.get(opts, :id, __MODULE__),
      start: {__MODULE__, :start_link, [Keyword.delete(opts, :id)]},
      # terminate/2 may wait :kill_grace for the OS process.
      shutdown: Keyword.get(opts, :kill_grace, 2_000) + 1_000
    }
  end

  @doc """
  Sends one encoded request and waits for its terminal reply.

  `payload` is the request map without `id`; the caller's process encodes it.
  `meta` carries `:op`, and for runs `:agent`, `:tools` and `:deps`. Returns the
  worker's answer, `{:error, %AxonPort.Error{kind: "timeout"}}` after `timeout`
  ms (the request is then cancelled), or `{:error, failure}`.
  """
  @spec request(server(), map(), keyword(), timeout()) :: {:ok, term()} | {:error, term()}
  def request(server, payload, meta, timeout) do
    id = new_id()
    frame = encode(Map.put(payload, :id, id))

    try do
      GenServer.call(server, {:request, id, frame, meta}, timeout)
    catch
      :exit, {:timeout, _} ->
        GenServer.cast(server, {:cancel_id, id})

        {:error,
         %Error{kind: "timeout", message: "no reply within #{timeout} ms; request cancelled"}}

      :exit, reason ->
        {:error, exit_failure(reason)}
    end
  end

  @doc """
  Starts a streaming request: chunk and terminal messages go to `meta[:to]`.

  Returns `{:ok, ref}`; the consumer then receives
  `{:axon_port, ref, {:chunk, event, data}}` zero or more times, then exactly one
  `{:axon_port, ref, {:result, result}}` or `{:axon_port, ref, {:error, reason}}`.
  If the consumer exits, the run is cancelled.
  """
  @spec start_stream(server(), map(), keyword()) :: {:ok, reference()} | {:error, term()}
  def start_stream(server, payload, meta) do
    id = new_id()
    frame = encode(Map.put(payload, :id, id))

    try do
      GenServer.call(server, {:stream, id, frame, meta})
    catch
      :exit, reason -> {:error, exit_failure(reason)}
    end
  end

  @doc "Cancels a stream started with `start_stream/3` (its consumer gets `{:error, ...cancelled}`)."
  @spec cancel(server(), reference()) :: :ok
  def cancel(server, ref) when is_reference(ref) do
    GenServer.cast(server, {:cancel_ref, ref})
  end

  @doc "The worker's OS pid."
  @spec os_pid(server()) :: non_neg_integer()
  def os_pid(server), do: GenServer.call(server, :os_pid)

  @doc """
  A snapshot: `%{os_pid, pending, ready, agents}` — `ready` is the worker's
  `ready` frame, `pending` the number of requests in flight.
  """
  @spec info(server()) :: map()
  def info(server), do: GenServer.call(server, :info)

  @doc "Number of requests in flight (what `AxonPort.Pool` balances on)."
  @spec load(server()) :: non_neg_integer()
  def load(server), do: GenServer.call(server, :load)

  @doc false
  def encode(term), do: :erlang.term_to_binary(term)

  # Unique among this node's requests; a collision with a request from another
  # node is detected by the worker GenServer and resolved there.
  defp new_id, do: System.unique_integer([:positive, :monotonic])

  defp exit_failure({:noproc, _}), do: :noproc
  defp exit_failure({{:nodedown, _}, _} = r), do: {:worker_down, r}
  defp exit_failure({reason, {GenServer, :call, _}}), do: {:worker_down, reason}
  defp exit_failure(reason), do: {:worker_down, reason}

  # ---------------------------------------------------------------------------
  # GenServer

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    # Frames are decoded with [:safe]: the protocol's atoms must exist first.
    _ = AxonPort.Protocol.frame_atoms()

    launcher = Keyword.get_lazy(opts, :launcher, &default_launcher/0)

    port_opts =
      [:binary, {:packet, 4}, :exit_status, :hide, args: worker_args(opts)] ++
        if(Keyword.get(opts, :mode, :fds) == :fds, do: [:nouse_stdio], else: []) ++
        env_opt(Keyword.get(opts, :env, []))

    case open_port(launcher, port_opts) do
      {:ok, port} -> handshake(port, opts)
      {:error, reason} -> {:stop, {:launcher_failed, launcher, reason}}
    end
  end

  defp open_port(launcher, port_opts) do
    {:ok, Port.open({:spawn_executable, launcher}, port_opts)}
  rescue
    e in ErlangError -> {:error, e.original}
    e in ArgumentError -> {:error, Exception.message(e)}
  end

  defp handshake(port, opts) do
    {:os_pid, os_pid} = Port.info(port, :os_pid)

    state = %{
      port: port,
      os_pid: os_pid,
      ready: nil,
      max_frame: nil,
      pending: %{},
      refs: %{},
      tasks: %{},
      agents: %{},
      task_sup: Keyword.get(opts, :task_supervisor, AxonPort.TaskSupervisor),
      kill_grace: Keyword.get(opts, :kill_grace, 2_000)
    }

    with {:ok, state} <- await_ready(state, Keyword.get(opts, :ready_timeout, 15_000)),
         {:ok, state} <- define_startup_agents(state, opts) do
      if pool = opts[:pool], do: :pg.join(AxonPort.PG, {AxonPort.Pool, pool}, self())
      {:ok, state}
    else
      {:error, reason} ->
        close_and_reap(state)
        {:stop, reason}
    end
  end

  defp default_launcher do
    Application.get_env(:axon_port, :launcher) ||
      raise ArgumentError, "no :launcher option and no `config :axon_port, launcher: ...`"
  end

  defp worker_args(opts) do
    mode = if Keyword.get(opts, :mode, :fds) == :fds, do: ["--fds", "3,4"], else: []

    ["--codec", "etf"] ++
      mode ++
      Enum.flat_map(Keyword.get(opts, :modules, []), &["--module", to_string(&1)]) ++
      flag(opts, :max_frame, "--max-frame") ++
      flag(opts, :max_inflight, "--max-inflight") ++
      flag(opts, :log_level, "--log-level") ++
      Enum.map(Keyword.get(opts, :args, []), &to_string/1)
  end

  defp flag(opts, key, name) do
    case Keyword.fetch(opts, key) do
      {:ok, v} -> [name, to_string(v)]
      :error -> []
    end
  end

  defp env_opt([]), do: []

  defp env_opt(env) do
    [env: Enum.map(env, fn {k, v} -> {to_charlist(k), v && to_charlist(v)} end)]
  end

  defp await_ready(%{port: port} = state, timeout) do
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
            log_frame(log, state)
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

  # Defines the startup agents synchronously (nothing else is served yet), so
  # the first run after start_link/1 — or after a restart — finds them.
  defp define_startup_agents(state, opts) do
    agents =
      Keyword.get(opts, :agents, []) ++
        Enum.flat_map(Keyword.get(opts, :workflows, []), & &1.__agents__())

    timeout = Keyword.get(opts, :define_timeout, 30_000)

    Enum.reduce_while(agents, {:ok, state}, fn {name, spec}, {:ok, state} ->
      {wire_spec, local} = AxonPort.Spec.to_wire(spec)
      name = to_string(name)
      id = new_id()
      send_frame(state, encode(%{op: :define_agent, id: id, name: name, spec: wire_spec}))

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
            log_frame(log, state)
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

  @impl true
  def handle_call({:request, id, frame, meta}, from, state) do
    start_request(id, frame, meta, from, nil, state)
  end

  def handle_call({:stream, id, frame, meta}, {caller, _} = _from, state) do
    to = Keyword.get(meta, :to, caller)
    ref = make_ref()

    case start_request(id, frame, Keyword.put(meta, :ref, ref), nil, to, state) do
      {:noreply, state} -> {:reply, {:ok, ref}, state}
      {:reply, error, state} -> {:reply, error, state}
    end
  end

  def handle_call(:os_pid, _from, state), do: {:reply, state.os_pid, state}
  def handle_call(:load, _from, state), do: {:reply, map_size(state.pending), state}

  def handle_call(:info, _from, state) do
    info = %{
      os_pid: state.os_pid,
      pending: map_size(state.pending),
      ready: state.ready,
      agents: Map.keys(state.agents)
    }

    {:reply, info, state}
  end

  @impl true
  def handle_cast({:cancel_id, id}, state) do
    if Map.has_key?(state.pending, id), do: send_frame(state, encode(%{op: :cancel, target: id}))
    {:noreply, state}
  end

  def handle_cast({:cancel_ref, ref}, state) do
    case state.refs do
      %{^ref => id} -> handle_cast({:cancel_id, id}, state)
      _ -> {:noreply, state}
    end
  end

  @impl true
  def handle_info({port, {:data, bin}}, %{port: port} = state) do
    case AxonPort.Protocol.decode(bin) do
      {:ok, frame} ->
        {:noreply, handle_frame(frame, state)}

      {:error, :undecodable} ->
        Logger.error(
          "axon_port worker #{state.os_pid}: undecodable frame of #{byte_size(bin)} bytes " <>
            "(an atom outside protocol 1?): #{inspect(binary_part(bin, 0, min(byte_size(bin), 200)))}"
        )

        {:noreply, state}
    end
  end

  def handle_info({port, {:exit_status, status}}, %{port: port} = state) do
    worker_exited({:worker_exit, status}, state)
  end

  def handle_info({:EXIT, port, reason}, %{port: port} = state) do
    worker_exited({:worker_exit, reason}, state)
  end

  # A tool task finished.
  def handle_info({task_ref, result}, %{tasks: tasks} = state)
      when is_reference(task_ref) and is_map_key(tasks, task_ref) do
    Process.demonitor(task_ref, [:flush])
    {:noreply, tool_done(task_ref, result, state)}
  end

  def handle_info({:DOWN, mref, :process, _pid, reason}, %{tasks: tasks} = state)
      when is_map_key(tasks, mref) do
    {:noreply, tool_done(mref, {:error, "tool crashed: #{inspect(reason)}", false}, state)}
  end

  # A stream consumer or run caller died: cancel what it was waiting for.
  def handle_info({:DOWN, mref, :process, _pid, _reason}, state) do
    state.pending
    |> Enum.filter(fn {_id, req} -> req.monitor == mref end)
    |> Enum.each(fn {id, _} -> send_frame(state, encode(%{op: :cancel, target: id})) end)

    {:noreply, state}
  end

  def handle_info({:EXIT, _pid, _reason}, state), do: {:noreply, state}

  def handle_info(msg, state) do
    Logger.debug("axon_port worker: unexpected message #{inspect(msg)}")
    {:noreply, state}
  end

  @impl true
  def terminate(reason, state) do
    fail_all({:worker_exit, shutdown_reason(reason)}, state)
    close_and_reap(state)
    :ok
  end

  defp shutdown_reason({:shutdown, {:worker_exit, _} = r}), do: elem(r, 1)
  defp shutdown_reason(reason), do: reason

  # ---------------------------------------------------------------------------
  # Requests

  defp start_request(id, frame, meta, from, stream_to, state) do
    cond do
      state.max_frame && byte_size(frame) > state.max_frame ->
        err = %Error{
          kind: "bad_frame",
          message:
            "request of #{byte_size(frame)} bytes exceeds the worker's max_frame (#{state.max_frame})"
        }

        {:reply, {:error, err}, state}

      Map.has_key?(state.pending, id) ->
        # An id from another node's counter collided with one in flight.
        payload = :erlang.binary_to_term(frame)
        new = System.unique_integer([:positive, :monotonic])
        start_request(new, encode(%{payload | id: new}), meta, from, stream_to, state)

      true ->
        op = Keyword.fetch!(meta, :op)
        agent = meta[:agent]
        local = if op == :run, do: Map.get(state.agents, agent, %{}), else: %{}
        {frame, deps} = with_default_deps(frame, meta[:deps], local[:deps])

        req = %Request{
          id: id,
          op: op,
          from: from,
          stream_to: stream_to,
          ref: meta[:ref],
          agent: agent,
          tools: Map.merge(Map.get(local, :tools, %{}), meta[:tools] || %{}),
          deps: deps,
          local: meta[:local],
          monitor: monitor_for(op, from, stream_to),
          started: System.monotonic_time()
        }

        send_frame(state, frame)
        if op == :run, do: run_event(:start, req, %{}, state)

        state = put_in(state.pending[id], req)
        state = if req.ref, do: put_in(state.refs[req.ref], id), else: state
        {:noreply, state}
    end
  end

  # Default deps of an agent defined with `deps:` are merged under the run's own.
  defp with_default_deps(frame, deps, nil), do: {frame, deps}

  defp with_default_deps(frame, deps, defaults) do
    deps = Map.merge(defaults, deps || %{})
    {encode(Map.put(:erlang.binary_to_term(frame), :deps, deps)), deps}
  end

  defp monitor_for(_op, nil, pid) when is_pid(pid), do: Process.monitor(pid)
  defp monitor_for(:run, {pid, _}, _), do: Process.monitor(pid)
  defp monitor_for(_, _, _), do: nil

  defp send_frame(%{port: port}, frame) do
    Port.command(port, frame)
  rescue
    # The port is already closed; the exit_status / EXIT message will follow.
    ArgumentError -> false
  end

  defp handle_frame(%{type: :chunk, id: id} = frame, state) do
    case state.pending do
      %{^id => %Request{stream_to: to, ref: ref}} when is_pid(to) ->
        send(to, {:axon_port, ref, {:chunk, frame[:event], frame[:data]}})

      _ ->
        :ok
    end

    state
  end

  defp handle_frame(%{type: :tool_call, id: id, call_id: call_id} = frame, state) do
    tool = to_string(frame[:tool])

    case state.pending do
      %{^id => %Request{tools: %{^tool => handler}} = req} ->
        ctx = %{
          run_id: id,
          call_id: call_id,
          tool: tool,
          agent: req.agent,
          deps: req.deps,
          worker: self()
        }

        args = frame[:args] || %{}

        task =
          Task.Supervisor.async_nolink(state.task_sup, fn ->
            AxonPort.Tool.invoke(handler, args, ctx)
          end)

        state = put_in(state.tasks[task.ref], {id, call_id})
        put_in(state.pending[id].tasks[task.ref], task.pid)

      %{^id => _} ->
        send_tool_result(
          state,
          id,
          call_id,
          {:error, "no Elixir handler for tool #{tool}", false}
        )

        state

      _ ->
        state
    end
  end

  defp handle_frame(%{type: :log} = frame, state) do
    log_frame(frame, state)
    state
  end

  defp handle_frame(%{type: type, id: id} = frame, state)
       when type in [:result, :error, :pong] do
    case Map.pop(state.pending, id) do
      {nil, _} ->
        if id == nil, do: Logger.warning("axon_port worker: error frame #{inspect(frame)}")
        state

      {req, pending} ->
        reply = terminal_reply(req, frame)
        finish(req, reply, state)
        state = %{state | pending: pending, refs: Map.delete(state.refs, req.ref)}

        case {req.op, reply} do
          {:define_agent, {:ok, _}} -> put_in(state.agents[req.agent], req.local)
          _ -> state
        end
    end
  end

  defp handle_frame(frame, state) do
    Logger.warning("axon_port worker: unexpected frame #{inspect(frame)}")
    state
  end

  defp terminal_reply(_req, %{type: :pong}), do: :ok
  defp terminal_reply(_req, %{type: :error, error: err}), do: {:error, Error.from_wire(err)}

  defp terminal_reply(%Request{op: :run}, %{type: :result} = frame) do
    {:ok,
     %{
       output: frame[:output],
       usage: frame[:usage] || %{},
       messages: frame[:messages] || [],
       elapsed_ms: frame[:elapsed_ms]
     }}
  end

  defp terminal_reply(_req, %{type: :result} = frame), do: {:ok, frame[:output]}

  # Delivers a request's terminal reply and cleans up what it held.
  defp finish(%Request{} = req, reply, state) do
    if req.monitor, do: Process.demonitor(req.monitor, [:flush])

    for {_ref, pid} <- req.tasks do
      Task.Supervisor.terminate_child(state.task_sup, pid)
    end

    if req.op == :run do
      case reply do
        {:ok, result} -> run_event(:stop, req, result, state)
        {:error, reason} -> run_event(:exception, req, reason, state)
      end
    end

    cond do
      req.from ->
        GenServer.reply(req.from, reply)

      req.stream_to ->
        msg =
          case reply do
            {:ok, result} -> {:result, result}
            {:error, reason} -> {:error, reason}
          end

        send(req.stream_to, {:axon_port, req.ref, msg})

      true ->
        :ok
    end
  end

  defp worker_exited(failure, state) do
    state = fail_all(failure, state)
    {:stop, {:shutdown, failure}, state}
  end

  defp fail_all(failure, state) do
    for {_id, req} <- state.pending, do: finish(req, {:error, failure}, state)
    %{state | pending: %{}, refs: %{}, tasks: %{}}
  end

  # ---------------------------------------------------------------------------
  # Elixir tools

  defp tool_done(task_ref, result, state) do
    {{run_id, call_id}, tasks} = Map.pop(state.tasks, task_ref)
    state = %{state | tasks: tasks}

    case state.pending do
      %{^run_id => req} ->
        send_tool_result(state, run_id, call_id, result)
        put_in(state.pending[run_id], %{req | tasks: Map.delete(req.tasks, task_ref)})

      _ ->
        state
    end
  end

  defp send_tool_result(state, run_id, call_id, result) do
    base = %{op: :tool_result, id: run_id, call_id: call_id}

    msg =
      case result do
        {:ok, value} -> Map.put(base, :ok, value)
        {:error, message, retry?} -> Map.merge(base, %{error: message, retry: retry?})
      end

    frame =
      try do
        encode(msg)
      rescue
        e -> encode(Map.merge(base, %{error: Exception.message(e), retry: false}))
      end

    send_frame(state, frame)
  end

  # ---------------------------------------------------------------------------
  # Logs and telemetry

  @levels %{
    "debug" => :debug,
    "info" => :info,
    "warning" => :warning,
    "warn" => :warning,
    "error" => :error,
    "critical" => :critical
  }

  defp log_frame(frame, state) do
    level = Map.get(@levels, to_string(frame[:level]), :info)

    Logger.log(level, fn -> to_string(frame[:message]) end,
      axon_port: true,
      py_logger: frame[:logger],
      request_id: frame[:id],
      os_pid: state.os_pid
    )
  end

  defp run_event(:start, req, _, state) do
    Telemetry.execute(
      [:axon_port, :run, :start],
      %{system_time: System.system_time(), monotonic_time: req.started},
      event_meta(req, state)
    )
  end

  defp run_event(:stop, req, result, state) do
    usage = result.usage

    Telemetry.execute(
      [:axon_port, :run, :stop],
      %{
        duration: System.monotonic_time() - req.started,
        input_tokens: token(usage, "input_tokens"),
        output_tokens: token(usage, "output_tokens"),
        total_tokens: token(usage, "total_tokens"),
        requests: token(usage, "requests")
      },
      Map.put(event_meta(req, state), :usage, usage)
    )
  end

  defp run_event(:exception, req, reason, state) do
    Telemetry.execute(
      [:axon_port, :run, :exception],
      %{duration: System.monotonic_time() - req.started},
      Map.merge(event_meta(req, state), %{kind: :error, reason: reason, stacktrace: []})
    )
  end

  defp token(usage, key) when is_map(usage) do
    case Map.get(usage, key) do
      n when is_integer(n) -> n
      _ -> 0
    end
  end

  defp token(_, _), do: 0

  defp event_meta(req, state) do
    %{
      worker: self(),
      os_pid: state.os_pid,
      request_id: req.id,
      ref: req.ref,
      agent: req.agent,
      stream: req.stream_to != nil
    }
  end

  # ---------------------------------------------------------------------------
  # Shutdown

  defp close_and_reap(%{port: port, os_pid: os_pid, kill_grace: grace}) do
    try do
      Port.close(port)
    rescue
      ArgumentError -> :ok
    end

    # EOF makes the worker exit on its own; kill it only if it lingers.
    unless AxonPort.OS.wait_exit(os_pid, grace) do
      Logger.warning("axon_port worker #{os_pid} still alive #{grace} ms after EOF; killing it")
      AxonPort.OS.kill(os_pid)
      AxonPort.OS.wait_exit(os_pid, 1_000)
    end

    :ok
  end
end
