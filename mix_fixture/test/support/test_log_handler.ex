defmodule AxonPort.TestLogHandler do
  @moduledoc false
  # An Erlang :logger handler that forwards axon_port worker events to a pid.

  def log(%{meta: %{axon_port: true}} = event, %{config: %{pid: pid}}) do
    msg =
      case event.msg do
        {:string, s} -> s
        {:report, r} -> inspect(r)
        {fmt, args} -> :io_lib.format(fmt, args)
      end

    send(pid, {:log_event, %{level: event.level, msg: msg, meta: event.meta}})
  end

  def log(_event, _config), do: :ok
end
