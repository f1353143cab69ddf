defmodule AxonPort.Worker.Pending do
  @moduledoc false
  # The bookkeeping of in-flight requests: `state.pending` (`id => Request`),
  # `state.refs` (stream `ref => id`) and their end.
  #
  # A request is registered when its frame is written (`start/6`), and finished
  # exactly once: by its terminal frame (`complete/2`) or by the worker's end
  # (`fail_all/2`). Finishing demonitors its caller or consumer, terminates its
  # still-running tool tasks, emits the run's telemetry and delivers the reply —
  # `GenServer.reply/2` to a caller, `{:axon_port, ref, {:result | :error, _}}` to
  # a stream consumer.
  #
  # Internal to `AxonPort.Worker`; every function runs in the worker process and
  # takes and returns its state.

  require Logger

  alias AxonPort.Error
  alias AxonPort.Worker.{Direct, Events, Request, Wire}

  @typedoc "The worker's state (`AxonPort.Worker.State`)."
  @type state :: AxonPort.Worker.State.t()

  @doc """
  Writes request `id`'s `frame` and registers it.

  `meta` carries `:op`, `:ref` (the key the request is cancelled by) and, for
  runs, `:agent`, `:tools`, `:deps`; streams add `:watcher` (the process that
  forwards the terminal message, see `AxonPort.Worker.watch/3`),
  `define_agent` adds `:local`. `from` is the caller (nil for streams),
  `stream_to` the stream consumer (nil for calls). A run's agent's default deps
  are merged under the run's own. Returns `{:error, %AxonPort.Error{kind:
  "bad_frame"}}` without sending if the frame exceeds the worker's `max_frame`;
  an id already in flight (another node's counter) is replaced by a fresh one —
  callers cancel by `ref`, never by id, so a cancel names the request it was
  meant for.
  """
  @spec start(integer(), iodata(), keyword(), GenServer.from() | nil, pid() | nil, state()) ::
          {:ok, state()} | {:error, Error.t()}
  def start(id, frame, meta, from, stream_to, state) do
    cond do
      state.max_frame && IO.iodata_length(frame) > state.max_frame ->
        {:error,
         %Error{
           kind: "bad_frame",
           message:
             "request of #{IO.iodata_length(frame)} bytes exceeds the worker's max_frame (#{state.max_frame})"
         }}

      Map.has_key?(state.pending, id) or not :ets.insert_new(state.tab, {id, :slow}) ->
        # An id from another node's counter (or this node's slow-path counter)
        # collided with one in flight: take a fresh one from the worker's.
        new = Direct.reserve(state.tab, state.ctr, :slow)
        :ets.delete(state.tab, new)
        start(new, Wire.put(frame, :id, new), meta, from, stream_to, state)

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
          watcher: meta[:watcher],
          monitor: monitor_for(op, from, meta[:watcher]),
          started: System.monotonic_time()
        }

        Wire.send_frame(state, frame)
        if op == :run, do: Events.run(:start, req, %{}, state.os_pid)

        state = put_in(state.pending[id], req)
        state = if req.ref, do: put_in(state.refs[req.ref], id), else: state
        {:ok, state}
    end
  end

  # Default deps of an agent defined with `deps:` are merged under the run's own.
  defp with_default_deps(frame, deps, nil), do: {frame, deps}

  defp with_default_deps(frame, deps, defaults) do
    deps = Map.merge(defaults, deps || %{})
    {Wire.put(frame, :deps, deps), deps}
  end

  # A stream is watched through its watcher (which exits with its consumer).
  defp monitor_for(_op, nil, watcher) when is_pid(watcher), do: Process.monitor(watcher)
  defp monitor_for(op, {pid, _}, _) when op in [:run, :complete], do: Process.monitor(pid)
  defp monitor_for(_, _, _), do: nil

  @doc "Number of requests in flight (both paths: each holds an id in `state.tab`)."
  @spec count(state()) :: non_neg_integer()
  def count(state), do: max(:ets.info(state.tab, :size), map_size(state.pending))

  @doc "Sends `cancel` for request `id` if it is still in flight."
  @spec cancel(state(), integer()) :: :ok
  def cancel(state, id) do
    if Map.has_key?(state.pending, id), do: Wire.send_cancel(state, id)
    :ok
  end

  @doc "Sends `cancel` for the request registered under `ref`, if it is still in flight."
  @spec cancel_ref(state(), reference()) :: :ok
  def cancel_ref(state, ref) do
    case state.refs do
      %{^ref => id} -> cancel(state, id)
      _ -> :ok
    end
  end

  @doc """
  Sends `cancel` for every request whose caller or consumer was monitored with
  `mref` (it died). The requests stay pending until their terminal frame.
  """
  @spec cancel_monitored(state(), reference()) :: :ok
  def cancel_monitored(state, mref) do
    state.pending
    |> Enum.filter(fn {_id, req} -> req.monitor == mref end)
    |> Enum.each(fn {id, _} -> Wire.send_cancel(state, id) end)
  end

  @doc """
  Sends a `chunk` frame to its stream's consumer as
  `{:axon_port, ref, {:chunk, event, data}}`; ignored for unknown ids and for
  requests that are not streams.
  """
  @spec chunk(map(), state()) :: state()
  def chunk(%{id: id} = frame, state) do
    case state.pending do
      %{^id => %Request{stream_to: to, ref: ref}} when is_pid(to) ->
        send(to, {:axon_port, ref, {:chunk, frame[:event], frame[:data]}})

      _ ->
        :ok
    end

    state
  end

  @doc """
  Finishes the request of a terminal frame (`result`, `error` or `pong`).

  A successful `define_agent` records the agent's Elixir-side parts in
  `state.agents`. A frame for an unknown id is dropped (logged if it is an
  `error` frame without an id).
  """
  @spec complete(map(), state()) :: state()
  def complete(%{type: type, id: id} = frame, state) when type in [:result, :error, :pong] do
    case Map.pop(state.pending, id) do
      {nil, _} ->
        if id == nil, do: Logger.warning("axon_port worker: error frame #{inspect(frame)}")
        state

      {req, pending} ->
        :ets.delete(state.tab, id)
        reply = terminal_reply(req, frame)
        finish(req, reply, state)
        state = %{state | pending: pending, refs: Map.delete(state.refs, req.ref)}

        case {req.op, reply} do
          {:define_agent, {:ok, _}} -> put_in(state.agents[req.agent], req.local)
          _ -> state
        end
    end
  end

  defp terminal_reply(_req, %{type: :pong}), do: :ok
  defp terminal_reply(_req, %{type: :error, error: err}), do: {:error, Error.from_wire(err)}

  defp terminal_reply(%Request{op: op}, %{type: :result} = frame) when op in [:run, :complete] do
    result = %{
      output: frame[:output],
      usage: frame[:usage] || %{},
      messages: frame[:messages] || [],
      elapsed_ms: frame[:elapsed_ms]
    }

    # A run waiting for approvals or deferred calls (see AxonPort.Approvals).
    {:ok, if(frame[:deferred], do: Map.put(result, :deferred, frame[:deferred]), else: result)}
  end

  defp terminal_reply(_req, %{type: :result} = frame), do: {:ok, frame[:output]}

  @doc """
  Finishes request `id` (if pending) with `reply` and sends the worker `cancel`
  for it, so it stops working on it; its terminal frame is then dropped.
  """
  @spec fail(integer() | nil, {:error, term()}, state()) :: state()
  def fail(id, reply, state) do
    case Map.pop(state.pending, id) do
      {nil, _} ->
        if is_integer(id) and Direct.deliver(state.tab, id, reply),
          do: Wire.send_cancel(state, id)

        state

      {req, pending} ->
        :ets.delete(state.tab, id)
        Wire.send_cancel(state, id)
        finish(req, reply, state)
        %{state | pending: pending, refs: Map.delete(state.refs, req.ref)}
    end
  end

  @doc """
  Finishes every pending request with `{:error, failure}` and forgets them (and
  all tool tasks).
  """
  @spec fail_all(term(), state()) :: state()
  def fail_all(failure, state) do
    for {id, req} <- state.pending do
      :ets.delete(state.tab, id)
      finish(req, {:error, failure}, state)
    end

    Direct.fail_all(state.tab, {:error, failure})
    %{state | pending: %{}, refs: %{}, tasks: %{}}
  end

  # Delivers a request's terminal reply and cleans up what it held.
  defp finish(%Request{} = req, reply, state) do
    if req.monitor, do: Process.demonitor(req.monitor, [:flush])

    for {_ref, pid} <- req.tasks do
      Task.Supervisor.terminate_child(state.task_sup, pid)
    end

    if req.op == :run do
      case reply do
        {:ok, result} -> Events.run(:stop, req, result, state.os_pid)
        {:error, reason} -> Events.run(:exception, req, reason, state.os_pid)
      end
    end

    cond do
      req.from ->
        GenServer.reply(req.from, reply)

      req.watcher ->
        msg =
          case reply do
            {:ok, result} -> {:result, result}
            {:error, reason} -> {:error, reason}
          end

        send(req.watcher, {:axon_port, req.ref, msg})

      true ->
        :ok
    end
  end
end
