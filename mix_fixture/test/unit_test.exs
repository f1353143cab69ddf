defmodule AxonPort.UnitTest do
  # Pure Elixir: no worker process involved.
  use ExUnit.Case, async: true

  alias AxonPort.{Error, Spec, Telemetry, Tool}

  describe "retry policy" do
    test "retryable errors are retried up to max_attempts, others return at once" do
      {:ok, calls} = Agent.start_link(fn -> 0 end)
      err = %Error{kind: "model_http_error", retryable: true}

      fun = fn ->
        Agent.update(calls, &(&1 + 1))
        {:error, err}
      end

      assert {:error, ^err} = AxonPort.with_retry([max_attempts: 4, base_delay: 1], fun)
      assert Agent.get(calls, & &1) == 4

      Agent.update(calls, fn _ -> 0 end)
      bad = %Error{kind: "validation_error", retryable: false}

      assert {:error, ^bad} =
               AxonPort.with_retry([max_attempts: 4, base_delay: 1], fn ->
                 Agent.update(calls, &(&1 + 1))
                 {:error, bad}
               end)

      assert Agent.get(calls, & &1) == 1
    end

    test "a success after failures is returned" do
      {:ok, calls} = Agent.start_link(fn -> 0 end)

      fun = fn ->
        case Agent.get_and_update(calls, &{&1 + 1, &1 + 1}) do
          n when n < 3 -> {:error, {:worker_exit, 137}}
          _ -> {:ok, :fine}
        end
      end

      assert {:ok, :fine} = AxonPort.with_retry([max_attempts: 3, base_delay: 1], fun)
    end

    test "worker exits, a restarting worker and busy are retryable; timeouts are not" do
      assert AxonPort.retryable?({:worker_exit, 137})
      assert AxonPort.retryable?({:worker_down, :killed})
      assert AxonPort.retryable?(:noproc)
      assert AxonPort.retryable?(%Error{kind: "busy", retryable: true})
      refute AxonPort.retryable?(%Error{kind: "timeout"})
      refute AxonPort.retryable?(%Error{kind: "cancelled"})
    end

    test "backoff doubles, is capped, and jitter stays within [delay/2, delay]" do
      policy = [base_delay: 100, max_delay: 1_000, jitter: false]
      assert Enum.map(1..6, &AxonPort.backoff(&1, policy)) == [100, 200, 400, 800, 1_000, 1_000]

      for n <- 1..6, _ <- 1..50 do
        d = AxonPort.backoff(n, Keyword.put(policy, :jitter, true))
        full = AxonPort.backoff(n, policy)
        assert d >= div(full, 2) and d <= full
      end
    end
  end

  describe "spec translation" do
    test "Elixir tools become remote tools; Python tools their registered names" do
      fun = fn args -> args end

      {wire, local} =
        Spec.to_wire(
          model: "test",
          system_prompt: "Hi",
          tools: [
            "lookup_city",
            %{
              name: "customer_balance",
              handler: {:python, module: "m", function: "customer_balance"}
            },
            %{name: "add", description: "Adds.", handler: {:elixir, fun}}
          ],
          result_type: %{answer: :string, items: [:integer], nested: %{ok: :boolean}},
          deps: %{"customer_id" => 1},
          module: "bank_support"
        )

      assert wire.model == "test"
      assert wire.system_prompt == "Hi"
      refute Map.has_key?(wire, :deps)
      refute Map.has_key?(wire, :module)

      assert [
               "lookup_city",
               "customer_balance",
               %{
                 name: "add",
                 description: "Adds.",
                 parameters: %{"type" => "object"},
                 remote: true
               }
             ] = wire.tools

      assert wire.result_type == %{
               "answer" => :string,
               "items" => [:integer],
               "nested" => %{"ok" => :boolean}
             }

      assert local.tools == %{"add" => fun}
      assert local.deps == %{"customer_id" => 1}
    end

    test "model {:system, var} reads the environment" do
      System.put_env("AXON_PORT_UNIT_MODEL", "openai-chat:gpt-4o")

      assert {%{model: "openai-chat:gpt-4o"}, _} =
               Spec.to_wire(model: {:system, "AXON_PORT_UNIT_MODEL"})

      assert_raise ArgumentError, fn ->
        Spec.to_wire(model: {:system, "AXON_PORT_UNSET_VAR_X"})
      end
    end

    test "invalid definitions raise in the caller" do
      assert_raise ArgumentError, ~r/unknown agent spec keys/, fn ->
        Spec.to_wire(modle: "test")
      end

      assert_raise ArgumentError, ~r/same name/, fn ->
        Spec.to_wire(tools: [%{name: "a", handler: {:python, function: "b"}}])
      end

      assert_raise ArgumentError, ~r/unknown keys \[:modul\]/, fn ->
        Spec.to_wire(tools: [%{name: "a", handler: {:python, function: "a", modul: "m"}}])
      end

      assert_raise ArgumentError, ~r/needs function:/, fn ->
        Spec.to_wire(tools: [%{name: "a", handler: {:python, module: "m"}}])
      end

      assert {%{tools: ["a"]}, _} =
               Spec.to_wire(tools: [%{name: "a", handler: {:python, function: "a", module: "m"}}])

      assert_raise ArgumentError, ~r/fun\/1/, fn ->
        Spec.to_wire(tools: [%{name: "a", handler: {:elixir, fn -> :ok end}}])
      end

      assert_raise ArgumentError, ~r/handler or remote/, fn ->
        Spec.to_wire(tools: [%{name: "a"}])
      end
    end
  end

  describe "tool results" do
    test "return values, errors, retries and exceptions map to tool_result fields" do
      ctx = %{deps: nil}
      assert {:ok, 3} = Tool.invoke(fn %{"a" => a} -> a + 2 end, %{"a" => 1}, ctx)
      assert {:ok, :x} = Tool.invoke(fn _ -> {:ok, :x} end, %{}, ctx)
      assert {:error, "nope", false} = Tool.invoke(fn _ -> {:error, "nope"} end, %{}, ctx)
      assert {:error, "again", true} = Tool.invoke(fn _ -> {:retry, "again"} end, %{}, ctx)
      assert {:error, "bad", false} = Tool.invoke(fn _ -> raise "bad" end, %{}, ctx)
      assert {:error, msg, false} = Tool.invoke(fn _ -> throw(:ball) end, %{}, ctx)
      assert msg =~ "ball"
      assert {:ok, "1-x"} = Tool.invoke({__MODULE__, :join, ["x"]}, %{"n" => 1}, ctx)
      assert {:ok, %{deps: :d}} = Tool.invoke(fn _args, c -> c end, %{}, %{deps: :d})
    end
  end

  def join(%{"n" => n}, suffix), do: "#{n}-#{suffix}"

  describe "workflow DSL" do
    defmodule Flow do
      use AxonPort.Workflow

      agent :first, model: "test", tools: [%{name: "t", handler: {:elixir, fn _ -> :ok end}}]
      agent :second, model: {:system, "AXON_PORT_FLOW_MODEL"}, result_type: %{x: :integer}
    end

    test "__agents__/0 evaluates the definitions at run time, in order" do
      System.put_env("AXON_PORT_FLOW_MODEL", "test")
      assert [{:first, first}, {:second, second}] = Flow.__agents__()
      assert [%{name: "t", handler: {:elixir, f}}] = first[:tools]
      assert is_function(f, 1)
      assert {%{model: "test"}, _} = Spec.to_wire(second)
    end

    test "run/4 rejects an agent the workflow does not declare" do
      assert_raise ArgumentError, ~r/no agent :third/, fn -> Flow.run(self(), :third, "x") end
    end

    test "duplicate agent names do not compile" do
      assert_raise CompileError, ~r/duplicate agent names/, fn ->
        Code.compile_string("""
        defmodule AxonPort.UnitTest.Dup do
          use AxonPort.Workflow
          agent :a, model: "test"
          agent :a, model: "test"
        end
        """)
      end
    end
  end

  describe "telemetry without the :telemetry library" do
    test "local handlers receive events; a raising handler is detached" do
      refute Code.ensure_loaded?(:telemetry)
      me = self()
      id = make_ref()

      :ok =
        Telemetry.attach(
          id,
          [[:axon_port, :run, :stop]],
          fn e, m, md, cfg -> send(me, {e, m, md, cfg}) end,
          :cfg
        )

      assert {:error, :already_exists} = Telemetry.attach(id, [], fn _, _, _, _ -> :ok end)

      Telemetry.execute([:axon_port, :run, :stop], %{duration: 1}, %{request_id: 7})
      assert_received {[:axon_port, :run, :stop], %{duration: 1}, %{request_id: 7}, :cfg}
      Telemetry.detach(id)
      Telemetry.execute([:axon_port, :run, :stop], %{duration: 1}, %{})
      refute_received {[:axon_port, :run, :stop], _, _, _}

      bad = make_ref()
      :ok = Telemetry.attach(bad, [[:axon_port, :run, :start]], fn _, _, _, _ -> raise "oops" end)

      ExUnit.CaptureLog.capture_log(fn ->
        Telemetry.execute([:axon_port, :run, :start], %{}, %{})
      end)

      assert :ok = Telemetry.attach(bad, [], fn _, _, _, _ -> :ok end)
      Telemetry.detach(bad)
    end
  end

  describe "errors" do
    test "from_wire reads the protocol's error map" do
      assert %Error{kind: "timeout", message: "m", details: %{"a" => 1}, retryable: true} =
               Error.from_wire(%{
                 "kind" => "timeout",
                 "message" => "m",
                 "details" => %{"a" => 1},
                 "retryable" => true
               })

      assert Exception.message(%Error{kind: "busy", message: "full"}) == "busy: full"
    end

    test "every protocol frame atom exists, so [:safe] decoding works" do
      for atom <- AxonPort.Protocol.frame_atoms() do
        bin = :erlang.term_to_binary(%{atom => 1})
        assert {:ok, %{^atom => 1}} = AxonPort.Protocol.decode(bin)
      end

      assert {:error, :undecodable} = AxonPort.Protocol.decode(<<131, 1, 2>>)
    end
  end
end
