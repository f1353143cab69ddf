defmodule AxonPort.TelemetryLibTest do
  # Not async: it loads a stand-in `:telemetry` module for the whole VM.
  use ExUnit.Case, async: false

  test "events go to :telemetry.execute/3 when the library is loaded" do
    refute Code.ensure_loaded?(:telemetry)
    Process.register(self(), :axon_port_telemetry_probe)

    Code.compile_string("""
    defmodule :telemetry do
      def execute(event, measurements, metadata) do
        if pid = Process.whereis(:axon_port_telemetry_probe),
          do: send(pid, {:telemetry_lib, event, measurements, metadata})
        :ok
      end
    end
    """)

    on_exit(fn ->
      :code.purge(:telemetry)
      :code.delete(:telemetry)
      :code.purge(:telemetry)
      AxonPort.Telemetry.refresh()
    end)

    assert AxonPort.Telemetry.refresh()
    AxonPort.Telemetry.execute([:axon_port, :run, :stop], %{duration: 5}, %{request_id: 1})
    assert_received {:telemetry_lib, [:axon_port, :run, :stop], %{duration: 5}, %{request_id: 1}}
  end
end
