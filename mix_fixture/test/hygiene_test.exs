defmodule AxonPort.HygieneTest do
  use ExUnit.Case, async: false

  import AxonPort.TestHelpers

  alias AxonPort.{Error, Pool, Telemetry, Worker}

  defp script(responses), do: %{"provider" => "script", "responses" => responses}

  test "unknown worker and pool options raise ArgumentError" do
    assert_raise ArgumentError, ~r/unknown keys \[:modulez\]/, fn ->
      Worker.start_link(modulez: ["x"])
    end

    assert_raise ArgumentError, fn -> Worker.child_spec(bogus: 1) end
    assert_raise ArgumentError, fn -> Pool.child_spec(name: :p, sizee: 2) end
    assert_raise ArgumentError, ~r/:strategy/, fn -> Pool.child_spec(name: :p, strategy: :x) end
  end

  test "the worker state is a struct" do
    w = start_supervised!({Worker, worker_opts()})
    assert %AxonPort.Worker.State{pending: %{}} = :sys.get_state(w)
  end

  test "an unexpected exit of a linked process stops the worker" do
    w = start_supervised!({Worker, worker_opts()})
    ref = Process.monitor(w)
    linked = spawn(fn -> Process.sleep(:infinity) end)

    :sys.replace_state(w, fn s ->
      Process.link(linked)
      s
    end)

    Process.exit(linked, :boom)
    assert_receive {:DOWN, ^ref, :process, ^w, :boom}, 5_000
  end

  test "[:axon_port, :run, :stop] reports total_tokens from the run's usage" do
    w = start_supervised!({Worker, worker_opts()})
    me = self()
    id = {:tokens, make_ref()}

    :ok =
      Telemetry.attach(id, [[:axon_port, :run, :stop]], fn _e, m, meta, _ ->
        send(me, {:stop, m, meta})
      end)

    on_exit(fn -> Telemetry.detach(id) end)

    assert {:ok, %{usage: usage}} = AxonPort.run(w, %{model: script(["hello there"])}, "hi")
    assert_receive {:stop, m, %{usage: ^usage}}, 5_000
    assert m.input_tokens > 0 and m.output_tokens > 0
    assert m.total_tokens == m.input_tokens + m.output_tokens
  end

  test "an Elixir tool call without its Task.Supervisor is a clear tool error, not a crash" do
    w = start_supervised!({Worker, worker_opts(task_supervisor: :no_such_task_sup)})
    ref = Process.monitor(w)

    spec = %{
      model: script([%{"tool_calls" => [%{"tool" => "t", "args" => %{}}]}, "unreachable"]),
      tools: [%{name: "t", handler: {:elixir, fn _ -> "never" end}}]
    }

    assert {:error, %Error{kind: "tool_error", message: msg}} = AxonPort.run(w, spec, "go")
    assert msg =~ "Task.Supervisor"
    assert msg =~ "no_such_task_sup"
    refute_received {:DOWN, ^ref, _, _, _}
    assert :ok = AxonPort.ping(w)
  end
end
