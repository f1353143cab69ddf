defmodule AxonPort.Worker.Wire do
  @moduledoc false
  # Writing frames to the worker's port: ETF encoding, request ids and the one
  # place `Port.command/2` is called.
  #
  # Internal to `AxonPort.Worker`; every function runs in the worker GenServer
  # except `encode/1` and `new_id/0`, which callers use in their own processes.

  <<131, history_key::binary>> = :erlang.term_to_binary(:history)
  @history_key history_key

  @doc """
  Encodes a frame's term as ETF (what `{:packet, 4}` then frames).

  A request whose `:history` is an `AxonPort.History` is spliced rather than
  encoded: the rest of the map is encoded and the history's messages, encoded
  once when they were appended, follow as they are (an iolist; nothing is
  copied).
  """
  @spec encode(term()) :: iodata()
  def encode(%{history: %AxonPort.History{} = history} = term) do
    <<131, 116, arity::32, pairs::binary>> = :erlang.term_to_binary(Map.delete(term, :history))
    [<<131, 116, arity + 1::32>>, pairs, @history_key, AxonPort.History.list_iodata(history)]
  end

  def encode(term), do: :erlang.term_to_binary(term)

  @doc """
  An encoded request frame with `key` set to `value` (what `encode/1` of the
  request with `Map.put(request, key, value)` would give). A spliced
  `AxonPort.History` request is re-encoded without its history, whose binaries
  are kept as they are; any other frame is decoded and encoded again.
  """
  @spec put(iodata(), atom(), term()) :: iodata()
  def put([<<131, 116, n::32>>, pairs, @history_key, history], key, value) when key != :history do
    rest = :erlang.binary_to_term(<<131, 116, n - 1::32, pairs::binary>>)
    <<131, 116, m::32, pairs::binary>> = :erlang.term_to_binary(Map.put(rest, key, value))
    [<<131, 116, m + 1::32>>, pairs, @history_key, history]
  end

  def put(frame, key, value), do: encode(Map.put(decode(frame), key, value))

  @doc "The term of an encoded request frame (what `encode/1` returned)."
  @spec decode(iodata()) :: term()
  def decode(frame), do: :erlang.binary_to_term(IO.iodata_to_binary(frame))

  @doc """
  A fresh request id.

  Unique among this node's requests; a collision with a request from another
  node is detected by the worker GenServer and resolved there.
  """
  @spec new_id() :: pos_integer()
  def new_id, do: System.unique_integer([:positive, :monotonic])

  @doc """
  Writes one encoded frame to the port.

  Returns `false` if the port is already closed: the `exit_status` / `EXIT`
  message that follows is what reports the worker's end.
  """
  @spec send_frame(%{required(:port) => port(), optional(atom()) => term()}, iodata()) ::
          boolean()
  def send_frame(%{port: port}, frame) do
    Port.command(port, frame)
  rescue
    ArgumentError -> false
  end

  @doc "Writes a `cancel` frame for request `id`."
  @spec send_cancel(%{required(:port) => port(), optional(atom()) => term()}, integer()) ::
          boolean()
  def send_cancel(state, id), do: send_frame(state, encode(%{op: :cancel, target: id}))
end
