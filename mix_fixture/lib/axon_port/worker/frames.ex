defmodule AxonPort.Worker.Frames do
  @moduledoc """
  Routing of the frames a running worker sends: each is decoded once and
  handed to the module that owns its kind.

    * `chunk` → the stream's consumer (`AxonPort.Worker.Pending.chunk/2`);
    * `tool_call` → an Elixir tool task (`AxonPort.Worker.Tools.call/2`);
    * `log` → `Logger` (`AxonPort.Worker.Events.log/2`);
    * `result`, `error`, `pong` → the request's end
      (`AxonPort.Worker.Pending.complete/2`).

  An undecodable frame or one of an unknown type is logged and dropped: it
  never stops the worker.

  Internal to `AxonPort.Worker`; runs in the worker process.
  """

  require Logger

  alias AxonPort.Worker.{Events, Pending, Tools}

  @doc "Decodes one frame's bytes from the port and handles the frame."
  @spec handle_data(binary(), Pending.state()) :: Pending.state()
  def handle_data(bin, state) do
    case AxonPort.Protocol.decode(bin) do
      {:ok, frame} ->
        handle(frame, state)

      {:error, :undecodable} ->
        Logger.error(
          "axon_port worker #{state.os_pid}: undecodable frame of #{byte_size(bin)} bytes " <>
            "(an atom outside protocol 1?): #{inspect(binary_part(bin, 0, min(byte_size(bin), 200)))}"
        )

        state
    end
  end

  @doc "Handles one decoded frame."
  @spec handle(map(), Pending.state()) :: Pending.state()
  def handle(%{type: :chunk, id: _} = frame, state), do: Pending.chunk(frame, state)

  def handle(%{type: :tool_call, id: _, call_id: _} = frame, state), do: Tools.call(frame, state)

  def handle(%{type: :log} = frame, state) do
    Events.log(frame, state.os_pid)
    state
  end

  def handle(%{type: type, id: _} = frame, state) when type in [:result, :error, :pong] do
    Pending.complete(frame, state)
  end

  def handle(frame, state) do
    Logger.warning("axon_port worker: unexpected frame #{inspect(frame)}")
    state
  end
end
