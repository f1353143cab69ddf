defmodule AxonPort.Worker.Wire do
  @moduledoc false
  # Writing frames to the worker's port: ETF encoding, request ids and the one
  # place `Port.command/2` is called.
  #
  # Internal to `AxonPort.Worker`; every function runs in the worker GenServer
  # except `encode/1` and `new_id/0`, which callers use in their own processes.

  @doc "Encodes a frame's term as ETF (what `{:packet, 4}` then frames)."
  @spec encode(term()) :: binary()
  def encode(term), do: :erlang.term_to_binary(term)

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
  @spec send_frame(%{required(:port) => port(), optional(atom()) => term()}, binary()) ::
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
