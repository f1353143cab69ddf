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

  Simple requests (`call`, `ping`, `describe`, `stats`, `set_log_level`) from
  the worker's node take a direct path: the caller reserves an id in the
  worker's ETS table, encodes its own frame and writes it to the port itself;
  this process only routes the reply to it, undecoded when the frame's first
  bytes name its id (the caller decodes it; see `AxonPort.Worker.Direct` and
  `docs/elixir.md`, "Lifecycle guarantees"). Other requests are encoded by the
  caller (in its own process) and handed over with `GenServer.call/3`; the
  worker writes the frame, keeps `%{id => request}` and answers with
  `GenServer.reply/2` when the terminal frame (`result`, `error` or `pong`)
  arrives. Replies come in any order. A
  caller that gives up (its timeout) sends `cancel`; a streaming consumer that
  dies gets its run cancelled too.

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

  ## Layout

  This module holds the client functions and the GenServer callbacks. What
  runs in the caller's process is `AxonPort.Worker.Client` (requests, streams
  and their watcher) and `AxonPort.Worker.Direct` (the direct path); the
  helpers the callbacks call run in this process and take and return its state:

    * `AxonPort.Worker.Launch` — launcher, port options, the startup handshake,
      closing and reaping the OS process;
    * `AxonPort.Worker.Frames` — routing of decoded frames;
    * `AxonPort.Worker.Pending` — in-flight requests (`id => Request`), their
      replies, cancellation and fail-all on exit;
    * `AxonPort.Worker.Tools` — `tool_call` → supervised task → `tool_result`;
    * `AxonPort.Worker.Events` — `log` frames to `Logger`, run telemetry;
    * `AxonPort.Worker.Wire` — encoding, ids, writing frames to the port.
  """

  use GenServer
  require Logger

  alias AxonPort.Error
  alias AxonPort.Worker.{Client, Direct, Frames, Launch, Pending, State, Tools, Wire}

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
          | {:idle_spin_us, non_neg_integer()}
          | {:ready_timeout, timeout()}
          | {:define_timeout, timeout()}
          | {:kill_grace, non_neg_integer()}
          | {:agents, [{atom() | String.t(), map() | keyword()}]}
          | {:workflows, [module()]}
          | {:id, term()}
          | {:pool, term()}
          | {:pool_strategy, atom()}
          | {:task_supervisor, GenServer.server()}

  # ---------------------------------------------------------------------------
  # Client side (used by AxonPort; callable directly). The functions that run
  # in the caller's process are in AxonPort.Worker.Client.

  # The one list of options: validated by start_link/1 and child_spec/1 and
  # rendered into their docs.
  @options [
    id:
      "the child spec id (default `AxonPort.Worker`; give each worker of one supervisor its own).",
    name:
      "register the GenServer (use one under a supervisor, so callers reach the restarted worker).",
    launcher:
      "the executable to spawn; defaults to `Application.get_env(:axon_port, :launcher)` " <>
        "(the package's `priv/axon_port`).",
    mode: "`:fds` (default; `:nouse_stdio` and `--fds 3,4`) or `:stdio`.",
    modules:
      "Python modules the worker imports (`--module`), which register functions, tools and agents.",
    env:
      "extra environment variables for the worker (e.g. `PYTHONPATH`), a map or a list of pairs.",
    args: "extra arguments for the worker's command line.",
    log_level: "the worker's Python log level (`--log-level`), e.g. `:info`.",
    max_frame: "the worker's frame limit in bytes (`--max-frame`).",
    max_inflight: "the worker's limit of requests in flight (`--max-inflight`).",
    idle_spin_us:
      "µs the worker keeps polling after its last reply before it blocks " <>
        "(`--idle-spin-us`, default 1000; off by itself when the worker and the BEAM are " <>
        "pinned to one CPU; 0 turns it off).",
    agents:
      "`[{name, spec}]` defined on the worker at start, and again after every restart " <>
        "(see `AxonPort.define_agent/3`).",
    workflows: "modules that `use AxonPort.Workflow`, whose agents are defined likewise.",
    ready_timeout: "ms to wait for the `ready` frame (default 15 s).",
    define_timeout: "ms to wait for each startup agent's definition (default 30 s).",
    kill_grace: "ms to wait for the OS process after EOF before `kill -9` (default 2 s).",
    pool: "join the `AxonPort.Pool` group of that name (set by `AxonPort.Pool`).",
    pool_strategy: "the pool's `:strategy`, answered to other nodes (set by `AxonPort.Pool`).",
    task_supervisor:
      "the `Task.Supervisor` where Elixir tools run (default `AxonPort.TaskSupervisor`); " <>
        "if it is not running, tool calls fail with a clear tool error."
  ]
  @option_keys Keyword.keys(@options)

  @doc """
  Starts a worker linked to the caller and returns once it is ready.

  Options (unknown ones raise `ArgumentError`):

  #{Enum.map_join(@options, "\n", fn {key, doc} -> "  * `#{inspect(key)}` — #{doc}" end)}
  """
  @spec start_link([option()]) :: GenServer.on_start()
  def start_link(opts \\ []) do
    opts = Keyword.validate!(opts, @option_keys)
    {gen_opts, opts} = Keyword.split(opts, [:name])
    GenServer.start_link(__MODULE__, opts, gen_opts)
  end

  @doc "A child spec; `opts` as for `start_link/1`."
  def child_spec(opts) do
    opts = Keyword.validate!(opts, @option_keys)

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
  defdelegate request(server, payload, meta, timeout), to: Client

  @doc """
  Starts a streaming request: chunk and terminal messages go to `meta[:to]`.

  Returns `{:ok, ref}`; the consumer then receives
  `{:axon_port, ref, {:chunk, event, data}}` zero or more times, then exactly one
  `{:axon_port, ref, {:result, result}}` or `{:axon_port, ref, {:error, reason}}`.
  If the consumer exits, the run is cancelled.

  The terminal message comes whatever happens to the worker: a watcher process
  on the consumer's node monitors the worker GenServer and, if it goes away
  first (killed, its node down), sends `{:axon_port, ref, {:error,
  {:worker_down, reason}}}`.
  """
  @spec start_stream(server(), map(), keyword()) :: {:ok, reference()} | {:error, term()}
  defdelegate start_stream(server, payload, meta), to: Client

  @doc false
  # A stream's watcher (spawned by start_stream/3 on the consumer's node).
  @spec watch(GenServer.server(), pid(), reference()) :: :ok
  defdelegate watch(worker, to, ref), to: Client

  @doc "Cancels a stream started with `start_stream/3` (its consumer gets `{:error, ...cancelled}`)."
  @spec cancel(server(), reference()) :: :ok
  defdelegate cancel(server, ref), to: Client

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
  def encode(term), do: Wire.encode(term)

  # ---------------------------------------------------------------------------
  # GenServer

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    # Frames are decoded with [:safe]: the protocol's atoms must exist first.
    _ = AxonPort.Protocol.frame_atoms()

    launcher = Launch.launcher(opts)

    case Launch.open(launcher, opts) do
      {:ok, port} -> handshake(port, opts)
      {:error, reason} -> {:stop, {:launcher_failed, launcher, reason}}
    end
  end

  defp heir_opts do
    case AxonPort.Worker.Heir.whereis() do
      nil -> []
      heir -> [{:heir, heir, nil}]
    end
  end

  defp heir_pid(pid) when is_pid(pid), do: pid
  defp heir_pid(_none), do: nil

  # Names the (restarted) heir in the table again and publishes the direct route;
  # while there is no heir, tries again every 50 ms.
  defp rearm_heir(state) do
    case AxonPort.Worker.Heir.whereis() do
      nil ->
        Process.send_after(self(), :rearm_heir, 50)
        state

      heir ->
        true = :ets.setopts(state.tab, {:heir, heir, nil})
        state = watch_heir(state, heir)
        publish_route(state)
        state
    end
  end

  # The heir inherits the table whenever this process dies, and watches for why; we
  # watch the heir in turn, as a restarted heir must be named in the table again.
  defp watch_heir(state, heir) do
    AxonPort.Worker.Heir.watch(heir, self())
    %{state | heir_mon: Process.monitor(heir)}
  end

  defp publish_route(state),
    do: Direct.publish(self(), {state.port, state.tab, state.ctr, state.max_frame})

  defp handshake(port, opts) do
    {:os_pid, os_pid} = Port.info(port, :os_pid)

    state = %State{
      port: port,
      os_pid: os_pid,
      pool_strategy: opts[:pool_strategy],
      task_sup: Keyword.get(opts, :task_supervisor, AxonPort.TaskSupervisor),
      kill_grace: Keyword.get(opts, :kill_grace, 2_000),
      tab: :ets.new(__MODULE__, [:set, :public, write_concurrency: true] ++ heir_opts()),
      ctr: :atomics.new(1, [])
    }

    state =
      case heir_pid(:ets.info(state.tab, :heir)) do
        nil -> state
        heir -> watch_heir(state, heir)
      end

    with {:ok, state} <- Launch.await_ready(state, Keyword.get(opts, :ready_timeout, 15_000)),
         {:ok, state} <- Launch.define_agents(state, opts) do
      # The direct path needs the heir to answer its callers if this process dies.
      if state.heir_mon, do: publish_route(state)

      if pool = opts[:pool], do: :pg.join(AxonPort.PG, {AxonPort.Pool, pool}, self())
      {:ok, state}
    else
      {:error, reason} ->
        close_and_reap(state)
        {:stop, reason}
    end
  end

  @impl true
  def handle_call({:request, id, frame, meta}, from, state) do
    case Pending.start(id, frame, meta, from, nil, state) do
      {:ok, state} -> {:noreply, state}
      {:error, _} = error -> {:reply, error, state}
    end
  end

  def handle_call({:stream, id, frame, meta}, _from, state) do
    case Pending.start(id, frame, meta, nil, Keyword.fetch!(meta, :to), state) do
      {:ok, state} -> {:reply, {:ok, Keyword.fetch!(meta, :ref)}, state}
      {:error, _} = error -> {:reply, error, state}
    end
  end

  def handle_call(:os_pid, _from, state), do: {:reply, state.os_pid, state}
  def handle_call(:pool_strategy, _from, state), do: {:reply, state.pool_strategy, state}
  def handle_call(:load, _from, state), do: {:reply, Pending.count(state), state}

  def handle_call(:info, _from, state) do
    info = %{
      os_pid: state.os_pid,
      pending: Pending.count(state),
      ready: state.ready,
      agents: Map.keys(state.agents)
    }

    {:reply, info, state}
  end

  @impl true
  def handle_cast({:cancel_ref, ref}, state) do
    Pending.cancel_ref(state, ref)
    {:noreply, state}
  end

  @impl true
  def handle_info({port, {:data, bin}}, %{port: port} = state) do
    # A direct caller's reply goes to it undecoded; anything else is decoded here.
    if Direct.forward(bin, state.tab, state.pending) do
      {:noreply, state}
    else
      case Frames.handle_data(bin, state) do
        {:ok, state} -> {:noreply, state}
        {:protocol_error, detail, id, state} -> protocol_error(detail, id, state)
      end
    end
  catch
    kind, reason ->
      detail =
        "handling a frame raised: " <> Exception.format_banner(kind, reason, __STACKTRACE__)

      protocol_error(detail, nil, state)
  end

  # A direct caller found the frame routed to it malformed (and has its answer).
  def handle_info({Direct, :protocol_error, detail, id}, state) do
    protocol_error(detail, id, state)
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
    {:noreply, Tools.done(task_ref, result, state)}
  end

  def handle_info({:DOWN, mref, :process, _pid, reason}, %{tasks: tasks} = state)
      when is_map_key(tasks, mref) do
    {:noreply, Tools.done(mref, {:error, "tool crashed: #{inspect(reason)}", false}, state)}
  end

  # The heir died (the application's supervisor restarts it). Until the table names
  # the new one, nobody would answer our direct callers if this process died (the
  # table would go with it): the direct route is withdrawn meanwhile, and callers
  # take the GenServer path, whose calls exit with this process.
  def handle_info({:DOWN, mref, :process, _pid, _reason}, %{heir_mon: mref} = state) do
    Direct.unpublish(self())
    {:noreply, rearm_heir(%{state | heir_mon: nil})}
  end

  def handle_info(:rearm_heir, %{heir_mon: nil} = state), do: {:noreply, rearm_heir(state)}

  # A stream consumer or run caller died: cancel what it was waiting for.
  def handle_info({:DOWN, mref, :process, _pid, _reason}, state) do
    Pending.cancel_monitored(state, mref)
    {:noreply, state}
  end

  # Nothing else is linked to this process: an exit from a linked process we
  # do not know is a fault, and trapping it must not hide it.
  def handle_info({:EXIT, pid, reason}, state) do
    Logger.error("axon_port worker: linked process #{inspect(pid)} exited: #{inspect(reason)}")
    {:stop, reason, state}
  end

  def handle_info(msg, state) do
    Logger.debug("axon_port worker: unexpected message #{inspect(msg)}")
    {:noreply, state}
  end

  @impl true
  def terminate(reason, state) do
    Direct.unpublish(self())
    Pending.fail_all({:worker_exit, shutdown_reason(reason)}, state)
    close_and_reap(state)
    :ok
  end

  # Launch.close_and_reap/1 takes exactly these keys.
  defp close_and_reap(state),
    do: Launch.close_and_reap(Map.take(state, [:port, :os_pid, :kill_grace]))

  defp shutdown_reason({:shutdown, {:worker_exit, _} = r}), do: elem(r, 1)
  defp shutdown_reason(reason), do: reason

  # The worker broke protocol 1: its frame stream can no longer be trusted.
  # The request the frame named gets a `protocol_error`; every other caller a
  # `{:worker_exit, {:protocol_error, detail}}` (retryable); then this server
  # stops cleanly (terminate/2 closes the port and reaps the OS process) and
  # its supervisor starts a fresh worker.
  defp protocol_error(detail, id, state) do
    Logger.error("axon_port worker #{state.os_pid}: protocol error, restarting: #{detail}")
    error = %Error{kind: "protocol_error", message: detail}
    state = Pending.fail(id, {:error, error}, state)
    worker_exited({:worker_exit, {:protocol_error, detail}}, state)
  end

  defp worker_exited(failure, state) do
    Direct.unpublish(self())
    state = Pending.fail_all(failure, state)
    {:stop, {:shutdown, failure}, state}
  end
end
