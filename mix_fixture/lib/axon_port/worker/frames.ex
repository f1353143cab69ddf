defmodule AxonPort.Worker.Frames do
  @moduledoc false
  # Routing of the frames a running worker sends: each is decoded once, checked
  # against protocol 1 (`check/1`) and handed to the module that owns its kind:
  #
  #   * `chunk` → the stream's consumer (`AxonPort.Worker.Pending.chunk/2`);
  #   * `tool_call` → an Elixir tool task (`AxonPort.Worker.Tools.call/2`);
  #   * `log` → `Logger` (`AxonPort.Worker.Events.log/2`);
  #   * `result`, `error`, `pong` → the request's end (`Pending.complete/2`).
  #
  # A frame that is undecodable, not a map, of an unknown type, without a
  # usable id, or with a field of the wrong type (a map where a binary is
  # expected, ...) is a protocol error: `handle_data/2` returns
  # `{:protocol_error, detail, state}` and the worker GenServer logs it, answers
  # every caller and stops cleanly (see `AxonPort.Worker`). Never a raise.
  #
  # `terminal/2` is the same decoding and check, run by a direct caller on the
  # terminal frame the worker routed to it undecoded (`AxonPort.Worker.Direct`).

  require Logger

  alias AxonPort.Worker.{Direct, Events, Pending, Tools}

  @doc false
  @spec handle_data(binary(), Pending.state()) ::
          {:ok, Pending.state()} | {:protocol_error, String.t(), term(), Pending.state()}
  def handle_data(bin, state) do
    with {:ok, frame} <- decode(bin),
         :ok <- check(frame) do
      {:ok, handle(frame, state)}
    else
      {:error, detail} -> {:protocol_error, detail, id_of(bin), state}
    end
  end

  @doc false
  # In a direct caller: the reply of `bin`, the terminal frame the worker
  # routed to request `id` by its first bytes (`Direct.peek/1`). Decoded and
  # checked as `handle_data/2` does; when that fails, `{:protocol_error,
  # detail, reply}` where `reply` is what the worker's protocol error answers
  # this caller: a `protocol_error` for a decodable frame naming its request,
  # `{:worker_exit, {:protocol_error, detail}}` for an undecodable one (whose
  # id the worker would not know).
  @spec terminal(binary(), pos_integer()) ::
          {:ok, term()} | {:protocol_error, String.t(), {:error, term()}}
  def terminal(bin, id) do
    case decode(bin) do
      # The common frames, whose check is their match.
      {:ok, %{type: :result, id: ^id, output: output} = frame} when map_size(frame) == 3 ->
        {:ok, {:ok, output}}

      {:ok, %{type: :pong, id: ^id} = frame} when map_size(frame) == 2 ->
        {:ok, :ok}

      {:ok, frame} ->
        case check(frame) do
          :ok -> terminal_of(frame, id)
          {:error, detail} -> protocol_error(detail)
        end

      {:error, detail} ->
        {:protocol_error, detail, {:error, {:worker_exit, {:protocol_error, detail}}}}
    end
  end

  defp terminal_of(%{type: type, id: id} = frame, id) when type in [:result, :error, :pong],
    do: {:ok, Direct.reply(frame)}

  defp terminal_of(frame, id) do
    protocol_error(
      "frame routed to request #{id} by its first bytes decodes as " <>
        inspect(Map.take(frame, [:type, :id]), limit: 10)
    )
  end

  defp protocol_error(detail) do
    {:protocol_error, detail, {:error, %AxonPort.Error{kind: "protocol_error", message: detail}}}
  end

  defp decode(bin) do
    case AxonPort.Protocol.decode(bin) do
      {:ok, frame} ->
        {:ok, frame}

      {:error, :undecodable} ->
        {:error,
         "undecodable frame of #{byte_size(bin)} bytes: " <>
           inspect(binary_part(bin, 0, min(byte_size(bin), 200)))}
    end
  end

  # The id a malformed frame names, if it is a map with an integer id.
  defp id_of(bin) do
    case AxonPort.Protocol.decode(bin) do
      {:ok, %{id: id}} when is_integer(id) -> id
      _ -> nil
    end
  end

  @doc false
  # Checks one decoded frame's shape and field types (protocol 1, docs/protocol.md).
  @spec check(term()) :: :ok | {:error, String.t()}
  def check(%{type: :chunk} = f) do
    fields(f, id: :int, event: :bin)
  end

  def check(%{type: :tool_call} = f) do
    fields(f, id: :int, call_id: :id, tool: :bin, args: :opt_map)
  end

  def check(%{type: :log} = f) do
    fields(f, level: :bin_or_atom, message: :bin, logger: :opt_bin, id: :opt_int)
  end

  def check(%{type: :result} = f) do
    fields(f, id: :int, usage: :opt_map, messages: :opt_list, elapsed_ms: :opt_num)
  end

  def check(%{type: :pong} = f), do: fields(f, id: :int)

  def check(%{type: :error} = f) do
    with :ok <- fields(f, id: :opt_int, error: :map) do
      fields(f.error, %{
        "kind" => :bin,
        "message" => :opt_bin,
        "retryable" => :opt_bool
      })
    end
  end

  def check(%{type: type}), do: {:error, "frame of unknown type #{inspect(type, limit: 10)}"}
  def check(%{} = f), do: {:error, "frame without a type: #{inspect(f, limit: 10)}"}
  def check(other), do: {:error, "frame is not a map: #{inspect(other, limit: 10)}"}

  defp fields(frame, spec) do
    Enum.find_value(spec, :ok, fn {key, kind} ->
      value = Map.get(frame, key)

      unless type?(kind, value) do
        {:error,
         "#{inspect(Map.get(frame, :type, :error))} frame: #{inspect(key)} must be #{kind}, " <>
           "got #{inspect(value, limit: 10, printable_limit: 80)}"}
      end
    end)
  end

  defp type?(:int, v), do: is_integer(v)
  defp type?(:opt_int, v), do: is_nil(v) or is_integer(v)
  defp type?(:bin, v), do: is_binary(v)
  defp type?(:opt_bin, v), do: is_nil(v) or is_binary(v)
  defp type?(:bin_or_atom, v), do: is_binary(v) or (is_atom(v) and not is_nil(v))
  defp type?(:id, v), do: is_binary(v) or is_integer(v)
  defp type?(:map, v), do: is_map(v)
  defp type?(:opt_map, v), do: is_nil(v) or is_map(v)
  defp type?(:opt_list, v), do: is_nil(v) or is_list(v)
  defp type?(:opt_num, v), do: is_nil(v) or is_number(v)
  defp type?(:opt_bool, v), do: is_nil(v) or is_boolean(v)

  defp handle(%{type: :chunk} = frame, state), do: Pending.chunk(frame, state)
  defp handle(%{type: :tool_call} = frame, state), do: Tools.call(frame, state)

  defp handle(%{type: :log} = frame, state) do
    Events.log(frame, state.os_pid)
    state
  end

  defp handle(%{type: type, id: id} = frame, state) when type in [:result, :error, :pong] do
    cond do
      is_map_key(state.pending, id) -> Pending.complete(frame, state)
      is_integer(id) and Direct.deliver(state.tab, id, Direct.reply(frame)) -> state
      true -> Pending.complete(frame, state)
    end
  end
end
