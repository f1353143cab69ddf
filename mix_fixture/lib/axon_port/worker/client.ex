defmodule AxonPort.Worker.Client do
  @moduledoc false
  # The client side of `AxonPort.Worker`: what runs in the caller's process.
  # `AxonPort.Worker.request/4`, `start_stream/3`, `watch/3` and `cancel/2`
  # delegate here (their docs are there).
  #
  # A request takes the direct path (`AxonPort.Worker.Direct`) when its op is
  # one of `Direct.ops/0` and the worker is on this node and ready; otherwise
  # the caller encodes its frame and hands it to the worker GenServer with
  # `GenServer.call/3`. A stream always goes through the GenServer, with a
  # watcher process on the consumer's node that guarantees its terminal
  # message.

  alias AxonPort.Error
  alias AxonPort.Worker.{Direct, Wire}

  @doc false
  @spec request(GenServer.server(), map(), keyword(), timeout()) ::
          {:ok, term()} | :ok | {:error, term()}
  def request(server, payload, meta, timeout) do
    with true <- Direct.op?(Keyword.get(meta, :op)),
         pid when is_pid(pid) <- GenServer.whereis(server),
         route when route != nil <- Direct.route(pid) do
      Direct.request(pid, route, payload, timeout)
    else
      _ -> request_via_server(server, payload, meta, timeout)
    end
  end

  defp request_via_server(server, payload, meta, timeout) do
    id = Wire.new_id()
    # The key this request is cancelled by: the worker may give it another id.
    ref = make_ref()
    frame = Wire.encode(Map.put(payload, :id, id))

    try do
      GenServer.call(server, {:request, id, frame, Keyword.put(meta, :ref, ref)}, timeout)
    catch
      :exit, {:timeout, _} ->
        GenServer.cast(server, {:cancel_ref, ref})

        {:error,
         %Error{kind: "timeout", message: "no reply within #{timeout} ms; request cancelled"}}

      :exit, reason ->
        {:error, exit_failure(reason)}
    end
  end

  @doc false
  @spec start_stream(GenServer.server(), map(), keyword()) ::
          {:ok, reference()} | {:error, term()}
  def start_stream(server, payload, meta) do
    case GenServer.whereis(server) do
      nil -> {:error, :noproc}
      worker -> start_stream(worker, server, payload, meta)
    end
  end

  defp start_stream(worker, server, payload, meta) do
    id = Wire.new_id()
    ref = make_ref()
    to = Keyword.get(meta, :to, self())
    # Spawned as AxonPort.Worker.watch/3, the name other nodes know.
    watcher = :erlang.spawn(node(to), AxonPort.Worker, :watch, [worker, to, ref])
    frame = Wire.encode(Map.put(payload, :id, id))
    meta = Keyword.merge(meta, to: to, ref: ref, watcher: watcher)

    try do
      GenServer.call(server, {:stream, id, frame, meta})
    catch
      :exit, reason ->
        Process.exit(watcher, :kill)
        {:error, exit_failure(reason)}
    else
      {:ok, ^ref} = ok ->
        ok

      error ->
        Process.exit(watcher, :kill)
        error
    end
  end

  @doc false
  # A stream's watcher: forwards the stream's terminal message from the worker
  # to the consumer, or makes one up if the worker goes away first. Exits with
  # the consumer (the worker monitors the watcher and cancels the stream).
  @spec watch(GenServer.server(), pid(), reference()) :: :ok
  def watch(worker, to, ref) do
    worker_mon = Process.monitor(worker)
    to_mon = Process.monitor(to)

    receive do
      {:axon_port, ^ref, terminal} ->
        send(to, {:axon_port, ref, terminal})

      {:DOWN, ^worker_mon, :process, _, reason} ->
        send(to, {:axon_port, ref, {:error, {:worker_down, reason}}})

      {:DOWN, ^to_mon, :process, _, _} ->
        :ok
    end

    :ok
  end

  @doc false
  @spec cancel(GenServer.server(), reference()) :: :ok
  def cancel(server, ref) when is_reference(ref) do
    GenServer.cast(server, {:cancel_ref, ref})
  end

  defp exit_failure({:noproc, _}), do: :noproc
  defp exit_failure({{:nodedown, _}, _} = r), do: {:worker_down, r}
  defp exit_failure({reason, {GenServer, :call, _}}), do: {:worker_down, reason}
  defp exit_failure(reason), do: {:worker_down, reason}
end
