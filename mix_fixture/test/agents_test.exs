defmodule AxonPort.AgentsTest do
  use ExUnit.Case, async: true

  import AxonPort.TestHelpers

  alias AxonPort.{Error, Session, Worker}

  @moduletag :agents

  defp script(responses), do: %{"provider" => "script", "responses" => responses}

  setup do
    w =
      start_supervised!(
        {Worker,
         worker_opts(modules: ["axon_fixture_agents"], workflows: [AxonPort.FixtureWorkflow])}
      )

    %{w: w}
  end

  describe "run options" do
    test "an unknown option raises ArgumentError naming it, before anything is sent", %{w: w} do
      assert_raise ArgumentError, ~r/unknown keys \[:histroy\]/, fn ->
        AxonPort.run(w, %{model: "test"}, "hi", histroy: [])
      end

      assert_raise ArgumentError, ~r/:tiemout/, fn ->
        AxonPort.call(w, "add", [1, 2], %{}, tiemout: 5)
      end

      assert_raise ArgumentError, ~r/:retry/, fn ->
        AxonPort.stream(w, "x", "hi", retry: false)
      end

      assert_raise ArgumentError, ~r/:deps/, fn ->
        AxonPort.complete(w, "test", "hi", deps: %{})
      end

      assert_raise ArgumentError, ~r/:bogus/, fn -> AxonPort.ping(w, bogus: 1) end
      assert {:ok, %{"served_total" => _}} = AxonPort.stats(w)
    end

    test "model, instructions and usage are per-run overrides", %{w: w} do
      assert {:ok, "o"} = AxonPort.define_agent(w, :o, model: script(["from the spec"]))
      assert {:ok, %{output: "from the spec"}} = AxonPort.run(w, "o", "hi")

      assert {:ok, %{output: "from the run", messages: [request | _], usage: usage}} =
               AxonPort.run(w, "o", "hi",
                 model: script(["from the run"]),
                 instructions: "Answer in French.",
                 usage: %{requests: 4, input_tokens: 100}
               )

      assert request["instructions"] =~ "Answer in French."
      assert usage["requests"] == 5 and usage["input_tokens"] > 100
    end
  end

  describe "define and run" do
    test "a defined agent with structured output returns output, usage and messages", %{w: w} do
      assert {:ok, "support"} =
               AxonPort.define_agent(w, :support,
                 model: "test",
                 instructions: "Help.",
                 result_type: %{answer: :string, risk: :integer}
               )

      assert {:ok, %{output: output, usage: usage, messages: messages}} =
               AxonPort.run(w, "support", "hello")

      assert %{"answer" => answer, "risk" => risk} = output
      assert is_binary(answer) and is_integer(risk)
      assert is_integer(usage["input_tokens"])
      assert [_ | _] = messages
    end

    test "an agent with default deps can be redefined; run deps override defaults", %{w: w} do
      me = self()

      tool = %{
        name: "whoami",
        handler:
          {:elixir,
           fn _args, ctx ->
             send(me, {:deps, ctx.deps})
             "ok"
           end}
      }

      spec = fn model ->
        [model: model, tools: [tool], deps: %{"customer_id" => 1, "tier" => "gold"}]
      end

      calls = %{"tool_calls" => [%{"tool" => "whoami", "args" => %{}}]}
      assert {:ok, "d"} = AxonPort.define_agent(w, "d", spec.(script([calls, "first"])))
      assert {:ok, "d"} = AxonPort.define_agent(w, "d", spec.(script([calls, "second"])))

      assert {:ok, %{output: "second"}} =
               AxonPort.run(w, "d", "x", deps: %{"customer_id" => 2}, retry: false)

      assert_received {:deps, %{"customer_id" => 2, "tier" => "gold"}}
    end

    test "an inline spec runs without define_agent", %{w: w} do
      assert {:ok, %{output: output}} = AxonPort.run(w, %{model: script(["inline hello"])}, "hi")

      assert output == "inline hello"
    end

    test "an unknown agent is an unknown_agent error, not retried", %{w: w} do
      forward_telemetry([[:axon_port, :run, :start]], w)

      assert {:error, %Error{kind: "unknown_agent", retryable: false}} =
               AxonPort.run(w, "nope", "x")

      assert_received {:telemetry, [:axon_port, :run, :start], _, _}
      refute_received {:telemetry, [:axon_port, :run, :start], _, _}
    end

    test "a spec with an unknown key is a bad_request", %{w: w} do
      assert {:error, %Error{kind: "bad_request"}} =
               AxonPort.define_agent(w, "bad", %{model: "test", result_type: %{x: :no_such_type}})
    end

    test "a python handler may only name a tool the worker registered", %{w: w} do
      assert {:error, %Error{kind: "bad_request"}} =
               AxonPort.define_agent(w, "bad_tool",
                 model: "test",
                 tools: [%{name: "os_system", handler: {:python, function: "os_system"}}]
               )
    end
  end

  describe "Elixir tools" do
    test "a tool_call runs the Elixir fun in a task and the result reaches the model", %{w: w} do
      me = self()

      spec = %{
        model:
          script([
            %{"tool_calls" => [%{"tool" => "add_numbers", "args" => %{"a" => 2, "b" => 3}}]},
            "done"
          ]),
        tools: [
          %{
            name: "add_numbers",
            description: "Adds two numbers.",
            parameters: %{
              "type" => "object",
              "properties" => %{"a" => %{"type" => "integer"}, "b" => %{"type" => "integer"}},
              "required" => ["a", "b"]
            },
            handler:
              {:elixir,
               fn %{"a" => a, "b" => b}, ctx ->
                 send(me, {:tool_ran, self(), ctx.tool})
                 a + b
               end}
          }
        ]
      }

      assert {:ok, %{output: "done", messages: messages}} = AxonPort.run(w, spec, "add")
      assert_received {:tool_ran, task_pid, "add_numbers"}
      refute task_pid == w
      assert inspect(messages) =~ "add_numbers"
      assert messages |> inspect() |> String.contains?("5")
    end

    test "an MFA handler gets args and extra arguments", %{w: w} do
      spec = %{
        model:
          script([%{"tool_calls" => [%{"tool" => "greet", "args" => %{"name" => "Ada"}}]}, "ok"]),
        tools: [%{name: "greet", handler: {:elixir, {__MODULE__, :greet, ["Hello"]}}}]
      }

      assert {:ok, %{messages: messages}} = AxonPort.run(w, spec, "greet")
      assert inspect(messages) =~ "Hello, Ada"
    end

    test "an exception in an Elixir tool fails the run with a tool error", %{w: w} do
      spec = %{
        model:
          script([%{"tool_calls" => [%{"tool" => "explode", "args" => %{}}]}, "unreachable"]),
        tools: [%{name: "explode", handler: {:elixir, fn _ -> raise "kaboom" end}}]
      }

      assert {:error, %Error{kind: "tool_error", message: msg}} = AxonPort.run(w, spec, "go")
      assert msg =~ "kaboom"
      assert :ok = AxonPort.ping(w)
    end

    test "{:retry, msg} asks the model to call the tool again", %{w: w} do
      {:ok, counter} = Agent.start_link(fn -> 0 end)

      handler = fn _args ->
        case Agent.get_and_update(counter, &{&1 + 1, &1 + 1}) do
          1 -> {:retry, "try again, please"}
          n -> {:ok, "answer after #{n} calls"}
        end
      end

      spec = %{
        model:
          script([
            %{"tool_calls" => [%{"tool" => "flaky", "args" => %{}}]},
            %{"tool_calls" => [%{"tool" => "flaky", "args" => %{}}]},
            "finished"
          ]),
        tools: [%{name: "flaky", handler: {:elixir, handler}}],
        retries: 2
      }

      assert {:ok, %{output: "finished", messages: messages}} = AxonPort.run(w, spec, "go")
      assert Agent.get(counter, & &1) == 2
      assert inspect(messages) =~ "try again, please"
    end

    test "tools of concurrent runs do not block each other or the worker", %{w: w} do
      spec = fn i ->
        %{
          model:
            script([%{"tool_calls" => [%{"tool" => "slow", "args" => %{"i" => i}}]}, "r#{i}"]),
          tools: [
            %{
              name: "slow",
              handler:
                {:elixir,
                 fn %{"i" => i} ->
                   Process.sleep(200)
                   i
                 end}
            }
          ]
        }
      end

      results =
        1..10
        |> Task.async_stream(fn i -> AxonPort.run(w, spec.(i), "go") end, max_concurrency: 10)
        |> Enum.map(fn {:ok, {:ok, %{output: out}}} -> out end)

      assert results == Enum.map(1..10, &"r#{&1}")
    end
  end

  def greet(%{"name" => name}, greeting), do: "#{greeting}, #{name}"

  describe "history and sessions" do
    test "the history sent back reaches the model", %{w: w} do
      assert {:ok, %{output: "seen 1 messages", messages: m1}} =
               AxonPort.run(w, "history_counter", "one")

      assert {:ok, %{output: "seen 3 messages", messages: m2}} =
               AxonPort.run(w, "history_counter", "two", history: m1)

      assert {:ok, %{output: "seen 5 messages"}} =
               AxonPort.run(w, "history_counter", "three", history: m1 ++ m2)
    end

    test "a session keeps the conversation across a worker restart" do
      name = :"session_worker_#{System.unique_integer([:positive])}"

      start_supervised!({Worker, worker_opts(name: name, modules: ["axon_fixture_agents"])},
        id: :sw
      )

      {:ok, s} = Session.start_link(target: name, agent: "history_counter")

      assert {:ok, %{output: "seen 1 messages"}} = Session.chat(s, "one")
      assert length(Session.history(s)) == 2

      old = GenServer.whereis(name)
      os_pid = Worker.os_pid(name)
      :ok = AxonPort.OS.kill(os_pid)
      assert_os_pid_exited(os_pid)
      await_restart(name, old)

      assert {:ok, %{output: "seen 3 messages"}} = Session.chat(s, "two")
      assert length(Session.history(s)) == 4
      :ok = Session.reset(s)
      assert {:ok, %{output: "seen 1 messages"}} = Session.chat(s, "again")
    end
  end

  describe "streaming" do
    test "chunks are delivered to a pid, then the result", %{w: w} do
      spec = %{model: script([%{"text" => ["Hel", "lo", " world"]}])}
      assert {:ok, {_worker, ref}} = AxonPort.stream(w, spec, "hi")

      {deltas, result} = collect(ref, [])
      assert Enum.join(deltas) == "Hello world"
      assert %{output: "Hello world"} = result
    end

    test "stream!/4 is an Elixir Stream ending in the result", %{w: w} do
      spec = %{model: script([%{"text" => ["a", "b", "c"]}])}
      events = w |> AxonPort.stream!(spec, "hi") |> Enum.to_list()

      assert {:result, %{output: "abc"}} = List.last(events)

      text = for {:chunk, "text_delta", %{"delta" => d}} <- events, into: "", do: d

      assert text == "abc"
    end

    test "halting a Stream early cancels the run", %{w: w} do
      spec = %{model: script([%{"text" => Enum.map(1..50, &"#{&1} "), "chunk_delay_ms" => 50}])}
      assert [{:chunk, _, _}] = w |> AxonPort.stream!(spec, "hi") |> Enum.take(1)
      eventually(fn -> Worker.load(w) == 0 end, 5_000, "the stream to be cancelled")
    end

    test "structured output streams output_partial chunks", %{w: w} do
      spec = %{
        model: script([%{"output" => %{"city" => "Paris", "temp" => 21}}]),
        result_type: %{city: :string, temp: :integer}
      }

      events = w |> AxonPort.stream!(spec, "weather") |> Enum.to_list()
      assert {:result, %{output: %{"city" => "Paris", "temp" => 21}}} = List.last(events)
      assert Enum.any?(events, &match?({:chunk, "output_partial", _}, &1))
    end
  end

  defp collect(ref, acc) do
    receive do
      {:axon_port, ^ref, {:chunk, "text_delta", %{"delta" => d}}} -> collect(ref, [d | acc])
      {:axon_port, ^ref, {:chunk, _, _}} -> collect(ref, acc)
      {:axon_port, ^ref, {:result, result}} -> {Enum.reverse(acc), result}
      {:axon_port, ^ref, {:error, e}} -> flunk("stream failed: #{inspect(e)}")
    after
      10_000 -> flunk("stream stalled")
    end
  end

  describe "errors, timeouts and retries" do
    test "a retryable model error is retried with backoff, then returned", %{w: w} do
      forward_telemetry([[:axon_port, :run, :start], [:axon_port, :run, :exception]], w)
      spec = %{model: script([%{"error" => %{"status" => 429, "body" => "slow down"}}])}

      assert {:error, %Error{kind: "model_http_error", retryable: true}} =
               AxonPort.run(w, spec, "x", retry: [max_attempts: 3, base_delay: 10, max_delay: 50])

      for _ <- 1..3 do
        assert_received {:telemetry, [:axon_port, :run, :start], _, _}
        assert_received {:telemetry, [:axon_port, :run, :exception], _, %{reason: %Error{}}}
      end

      refute_received {:telemetry, [:axon_port, :run, :start], _, _}
    end

    test "retry: false returns the first error", %{w: w} do
      forward_telemetry([[:axon_port, :run, :start]], w)
      spec = %{model: script([%{"error" => %{"status" => 503}}])}
      assert {:error, %Error{retryable: true}} = AxonPort.run(w, spec, "x", retry: false)
      assert_received {:telemetry, [:axon_port, :run, :start], _, _}
      refute_received {:telemetry, [:axon_port, :run, :start], _, _}
    end

    test "a run timeout cancels the run in the worker", %{w: w} do
      spec = %{model: script([%{"text" => "late", "delay_ms" => 10_000}])}
      assert {:error, %Error{kind: "timeout"}} = AxonPort.run(w, spec, "x", timeout: 200)
      eventually(fn -> Worker.load(w) == 0 end, 5_000, "the run to be cancelled")
    end

    test "a dead stream consumer gets its run cancelled", %{w: w} do
      spec = %{model: script([%{"text" => "late", "delay_ms" => 10_000}])}

      consumer =
        spawn(fn ->
          receive do
            :never -> :ok
          end
        end)

      assert {:ok, _} = AxonPort.stream(w, spec, "x", to: consumer)
      eventually(fn -> Worker.load(w) == 1 end, 5_000, "the stream to start")
      Process.exit(consumer, :kill)
      eventually(fn -> Worker.load(w) == 0 end, 5_000, "the orphaned run to be cancelled")
    end
  end

  describe "telemetry" do
    test "start and stop carry the request id and token usage", %{w: w} do
      forward_telemetry([[:axon_port, :run, :start], [:axon_port, :run, :stop]], w)
      assert {:ok, %{usage: usage}} = AxonPort.run(w, %{model: "test"}, "hi")

      assert_received {:telemetry, [:axon_port, :run, :start], %{system_time: _},
                       %{request_id: id}}

      assert_received {:telemetry, [:axon_port, :run, :stop], meas,
                       %{request_id: ^id, usage: ^usage}}

      assert meas.duration > 0
      assert meas.input_tokens == usage["input_tokens"]
      assert meas.output_tokens == usage["output_tokens"]
    end
  end

  describe "workflows" do
    test "a workflow's agents are defined at start, with Python and Elixir tools and deps", %{
      w: w
    } do
      assert "bank_support_agent" in Worker.info(w).agents

      assert {:ok, %{output: output, messages: messages}} =
               AxonPort.FixtureWorkflow.run(w, :bank_support_agent, "What is my balance?")

      assert %{"support_advice" => _, "block_card" => b, "risk" => r} = output
      assert is_boolean(b) and is_integer(r)
      text = inspect(messages)
      assert text =~ "123.45"
      assert text =~ "John 123"
    end

    test "workflow agents are defined again after a worker restart" do
      name = :"wf_worker_#{System.unique_integer([:positive])}"

      start_supervised!(
        {Worker, worker_opts(name: name, workflows: [AxonPort.FixtureWorkflow])},
        id: :wf
      )

      old = GenServer.whereis(name)
      :ok = AxonPort.OS.kill(Worker.os_pid(name))
      await_restart(name, old)

      assert {:ok, %{output: %{"risk" => _}}} =
               AxonPort.FixtureWorkflow.run(name, :bank_support_agent, "hi")
    end

    test "the triage -> specialist example hands off in Elixir", %{w: _} do
      name = :"triage_worker_#{System.unique_integer([:positive])}"

      start_supervised!(
        {Worker, worker_opts(name: name, workflows: [AxonPort.Examples.Triage])},
        id: :triage
      )

      assert {:ok, %{department: dept, answer: answer, triage: triage}} =
               AxonPort.Examples.Triage.handle(name, "My card was stolen")

      assert dept in AxonPort.Examples.Triage.departments()
      assert is_binary(answer)
      assert %{"department" => _, "urgency" => _} = triage
    end
  end
end
