defmodule AxonPort.CompleteTest do
  use ExUnit.Case, async: true

  import AxonPort.TestHelpers

  alias AxonPort.{Error, Pool, Worker}

  defp script(responses), do: %{provider: "script", responses: responses}

  describe "complete" do
    @describetag :agents

    setup do
      %{w: start_supervised!({Worker, worker_opts()})}
    end

    test "a plain complete returns text, usage and the response message", %{w: w} do
      model = script([%{text: ["Hello", " there"]}])

      assert {:ok, %{output: output, usage: usage, messages: [response], elapsed_ms: ms}} =
               AxonPort.complete(w, model, "Say hello")

      assert output == %{"text" => "Hello there", "tool_calls" => [], "finish_reason" => nil}
      assert usage["output_tokens"] > 0
      assert response["kind"] == "response"
      assert is_number(ms)
    end

    test "messages may be earlier results' message data; tools come back as calls", %{w: w} do
      tools = [
        %{
          name: "lookup",
          description: "Look up.",
          parameters: %{"type" => "object", "properties" => %{"q" => %{"type" => "string"}}}
        }
      ]

      # TestModel calls every tool it is offered, then answers in text.
      assert {:ok, %{output: %{"tool_calls" => [call]}, messages: first}} =
               AxonPort.complete(w, "test", "find it", tools: tools)

      assert call["tool_name"] == "lookup"

      assert {:ok, %{output: %{"text" => "success (no tool calls)"}, messages: history}} =
               AxonPort.complete(w, :test, "hi", timeout: 10_000)

      assert [%{"kind" => "response"}] = first
      assert [%{"kind" => "response"}] = history

      # A conversation as pydantic-ai message data: a run's `messages`, then a
      # new request built from a prompt.
      {:ok, %{messages: run_messages}} = AxonPort.run(w, %{model: "test"}, "hello")

      next = %{
        "kind" => "request",
        "parts" => [%{"part_kind" => "user-prompt", "content" => "more"}]
      }

      assert {:ok, %{output: %{"text" => text}, messages: [_response]}} =
               AxonPort.complete(w, "test", run_messages ++ [next])

      assert is_binary(text)
    end

    test "output_schema returns checked structured output", %{w: w} do
      schema = %{
        "type" => "object",
        "properties" => %{"advice" => %{"type" => "string"}, "risk" => %{"type" => "integer"}},
        "required" => ["advice", "risk"]
      }

      assert {:ok, %{output: %{"output" => %{"advice" => "a", "risk" => 0}}}} =
               AxonPort.complete(w, "test", "x", output_schema: schema)

      bad = script([%{output: %{advice: 1}}])

      assert {:error, %Error{kind: "validation_error"}} =
               AxonPort.complete(w, bad, "x", output_schema: schema, retry: false)
    end

    test "an invalid request is a bad_request error", %{w: w} do
      assert {:error, %Error{kind: "bad_request", retryable: false}} =
               AxonPort.complete(w, "test", [])

      assert {:error, %Error{kind: "bad_request"}} =
               AxonPort.complete(w, "test", "x", tools: [%{description: "no name"}])

      assert {:error, %Error{kind: "bad_request"}} =
               AxonPort.complete(w, "test", [%{"kind" => "nonsense"}])
    end

    test "stream_to streams the request's events, then its result", %{w: w} do
      model = script([%{text: ["Hello", " there"]}])
      assert {:ok, {^w, ref}} = AxonPort.complete(w, model, "Say hello", stream_to: self())

      deltas = collect_deltas(ref, [])
      assert deltas == ["Hello", " there"]
    end

    test "a timeout or a caller's exit cancels the request in the worker", %{w: w} do
      # Often the first agent-layer request of this worker: its timeout may land while
      # the worker is still importing pydantic-ai, which must not break later requests.
      slow = fn text -> script([%{text: text, delay_ms: 30_000}]) end

      assert {:error, %Error{kind: "timeout"}} =
               AxonPort.complete(w, slow.("a"), "x", timeout: 200, retry: false)

      eventually(fn -> Worker.load(w) == 0 end, 5_000, "the timed-out request to end")

      caller = spawn(fn -> AxonPort.complete(w, slow.("b"), "x") end)
      eventually(fn -> Worker.load(w) == 1 end, 5_000, "the request in flight")
      Process.exit(caller, :kill)
      eventually(fn -> Worker.load(w) == 0 end, 5_000, "the orphaned request to be cancelled")

      assert {:ok, %{output: %{"text" => "still served"}}} =
               AxonPort.complete(w, script([%{text: "still served"}]), "x")
    end

    test "works on a pool" do
      pool = :"pool_complete_#{System.unique_integer([:positive])}"
      start_supervised!({Pool, name: pool, size: 1, worker: worker_opts()})
      eventually(fn -> length(Pool.members(pool)) == 1 end, 10_000, "a pool member")

      assert {:ok, %{output: %{"text" => "pooled"}}} =
               AxonPort.complete({:pool, pool}, script([%{text: "pooled"}]), "x")
    end
  end

  defp collect_deltas(ref, acc) do
    receive do
      {:axon_port, ^ref, {:chunk, "text_delta", %{"delta" => d}}} ->
        collect_deltas(ref, [d | acc])

      {:axon_port, ^ref, {:chunk, _event, _data}} ->
        collect_deltas(ref, acc)

      {:axon_port, ^ref, {:result, %{output: %{"text" => "Hello there"}}}} ->
        Enum.reverse(acc)

      {:axon_port, ^ref, other} ->
        flunk("stream ended with #{inspect(other)}")
    after
      10_000 -> flunk("no stream result")
    end
  end

  describe "set_log_level" do
    setup do
      %{w: start_supervised!({Worker, worker_opts()})}
    end

    test "sets the level (atom or binary) and back", %{w: w} do
      assert {:ok, "debug"} = AxonPort.set_log_level(w, :debug)
      assert {:ok, "info"} = AxonPort.set_log_level(w, "INFO")
      assert {:ok, "warning"} = AxonPort.set_log_level(w, "warning", timeout: 2_000)
      assert {:ok, "info"} = AxonPort.set_log_level(w, :info)
      assert :ok = AxonPort.ping(w)
    end

    test "an unknown level is a bad_request error", %{w: w} do
      assert {:error, %Error{kind: "bad_request", retryable: false}} =
               AxonPort.set_log_level(w, :loud)

      assert {:ok, "error"} = AxonPort.set_log_level(w, :error)
    end

    test "on a pool, every member gets the level" do
      pool = :"pool_log_#{System.unique_integer([:positive])}"
      start_supervised!({Pool, name: pool, size: 2, worker: worker_opts()})
      eventually(fn -> length(Pool.members(pool)) == 2 end, 10_000, "two pool members")

      assert {:ok, "debug"} = AxonPort.set_log_level({:pool, pool}, :debug)
      assert {:error, %Error{kind: "bad_request"}} = AxonPort.set_log_level({:pool, pool}, "x")
      assert {:error, :noproc} = AxonPort.set_log_level({:pool, :no_such_pool}, :debug)
    end
  end
end
