defmodule AxonPort.Protocol do
  @moduledoc """
  The atoms a worker may put in a frame (protocol version 1).

  The worker writes atoms only for a frame's top-level keys and its `type`
  value, from a fixed list; everything nested uses binaries. Frames are decoded
  with `:erlang.binary_to_term(bin, [:safe])`, which refuses to create atoms,
  so every atom of that list must already exist in the VM. Loading this module
  guarantees it (its literals are created when it loads); `AxonPort.Worker`
  calls `frame_atoms/0` before its first decode.
  """

  @types [:ready, :pong, :result, :error, :chunk, :tool_call, :log]

  @keys [
    # every frame
    :type,
    :id,
    # ready
    :protocol,
    :codec,
    :pid,
    :versions,
    :limits,
    :capabilities,
    # result / error
    :output,
    :usage,
    :messages,
    :elapsed_ms,
    :error,
    # chunk
    :seq,
    :event,
    :data,
    # tool_call
    :call_id,
    :tool,
    :args,
    # log
    :level,
    :logger,
    :message,
    :time,
    # result of a run waiting for approvals or deferred calls
    :deferred
  ]

  @doc "The `type` values of protocol 1."
  @spec types() :: [atom()]
  def types, do: @types

  @doc "Every atom a protocol-1 frame may contain (besides nil/true/false)."
  @spec frame_atoms() :: [atom()]
  def frame_atoms, do: @types ++ @keys

  @doc """
  Decodes one frame payload safely. A frame with an atom outside the known list
  (a newer worker?) or corrupt bytes are `{:error, :undecodable}`, never a raise.
  """
  @spec decode(binary()) :: {:ok, term()} | {:error, :undecodable}
  def decode(bin) do
    {:ok, :erlang.binary_to_term(bin, [:safe])}
  rescue
    ArgumentError -> {:error, :undecodable}
  end
end
