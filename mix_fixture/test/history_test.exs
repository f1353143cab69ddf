defmodule AxonPort.HistoryTest do
  use ExUnit.Case, async: true

  import AxonPort.TestHelpers

  alias AxonPort.{Error, History, Session, Worker}
  alias AxonPort.Worker.Wire

  @moduletag :agents

  @msgs [
    %{"kind" => "request", "parts" => [%{"content" => "hé", "n" => 1.5, "big" => 2 ** 70}]},
    %{"kind" => "response", "parts" => [], "x" => [1, :two, {3}], "y" => nil}
  ]

  setup do
    w = start_supervised!({Worker, worker_opts(modules: ["axon_fixture_agents"])})
    %{w: w}
  end

  test "new/append/size/to_list keep every message, in order" do
    h = History.new()
    assert History.size(h) == 0 and History.to_list(h) == []
    h = h |> History.append(Enum.take(@msgs, 1)) |> History.append(Enum.drop(@msgs, 1))
    assert History.size(h) == 2
    assert History.to_list(h) == @msgs
    assert History.to_list(History.new(@msgs ++ @msgs)) == @msgs ++ @msgs
  end

  test "a request with a History is spliced into exactly the frame of the plain list" do
    payload = %{op: :run, id: 7, agent: "a", prompt: "hi", deps: %{"k" => [1]}}

    for msgs <- [[], @msgs, List.duplicate(hd(@msgs), 300)] do
      frame = Wire.encode(Map.put(payload, :history, History.new(msgs)))
      assert is_list(frame)
      assert Wire.decode(frame) == Map.put(payload, :history, msgs)
      # the same bytes per message as the plain list's encoding, only the map's pair order differs
      plain = :erlang.term_to_binary(Map.put(payload, :history, msgs))
      assert IO.iodata_length(frame) == byte_size(plain)
    end
  end

  test "a run with a History sees the same history as with the plain list", %{w: w} do
    {:ok, first} = AxonPort.run(w, "history_counter", "one")
    assert first.output == "seen 1 messages"
    history = History.new(first.messages)

    assert {:ok, %{output: "seen 3 messages"} = second} =
             AxonPort.run(w, "history_counter", "two", history: history)

    assert {:ok, %{output: "seen 3 messages"}} =
             AxonPort.run(w, "history_counter", "two", history: first.messages)

    history = History.append(history, second.messages)

    assert {:ok, %{output: "seen 5 messages"}} =
             AxonPort.run(w, "history_counter", "three", history: history)
  end

  test "Wire.put sets a key of a spliced request without touching its history" do
    payload = %{op: :run, id: 7, agent: "a", prompt: "hi", deps: %{"k" => 1}}
    frame = Wire.encode(Map.put(payload, :history, History.new(@msgs)))
    put = Wire.put(frame, :deps, %{"k" => 2, "j" => 3})

    assert Wire.decode(put) ==
             %{payload | deps: %{"k" => 2, "j" => 3}} |> Map.put(:history, @msgs)

    assert List.last(put) == List.last(frame)
    assert Wire.decode(Wire.put(frame, :id, 9)).id == 9
    plain = Wire.encode(Map.put(payload, :history, @msgs))
    assert Wire.decode(Wire.put(plain, :id, 9)) == %{payload | id: 9} |> Map.put(:history, @msgs)
  end

  test "an agent's default deps merge under a History run's deps", %{w: w} do
    me = self()

    tool = %{
      name: "whoami",
      handler: {:elixir, fn _args, ctx -> send(me, {:deps, ctx.deps}) && "ok" end}
    }

    calls = %{"tool_calls" => [%{"tool" => "whoami", "args" => %{}}]}
    model = %{"provider" => "script", "responses" => [calls, "first"]}
    spec = [model: model, tools: [tool], deps: %{"customer_id" => 1, "tier" => "gold"}]
    assert {:ok, "d"} = AxonPort.define_agent(w, "d", spec)
    assert {:ok, %{output: "first", messages: msgs}} = AxonPort.run(w, "d", "x", retry: false)
    assert_receive {:deps, %{"customer_id" => 1, "tier" => "gold"}}

    assert {:ok, %{output: "first"}} =
             AxonPort.run(w, "d", "y",
               history: History.new(msgs),
               deps: %{"customer_id" => 2},
               retry: false
             )

    assert_receive {:deps, %{"customer_id" => 2, "tier" => "gold"}}
  end

  test "a History request over max_frame fails locally, before anything is sent", %{w: w} do
    max = Worker.info(w).ready.limits["max_frame"]
    big = History.new([%{"kind" => "request", "blob" => :binary.copy("x", max)}])

    assert {:error, %Error{kind: "bad_frame", message: message}} =
             AxonPort.run(w, "history_counter", "hi", history: big, retry: false)

    assert message =~ "exceeds the worker's max_frame"
    assert :ok = AxonPort.ping(w)
  end

  test "a Session keeps its conversation as a History and hands out the messages", %{w: w} do
    {:ok, %{messages: seed}} = AxonPort.run(w, "history_counter", "zero")
    {:ok, s} = Session.start_link(target: w, agent: "history_counter", history: seed)
    assert %History{} = :sys.get_state(s).history
    assert {:ok, %{output: "seen 3 messages"}} = Session.chat(s, "one")
    [first, second | new] = Session.history(s)
    assert [first, second] == seed and length(new) == 2
    assert {:ok, %{output: "seen 5 messages"}} = Session.chat(s, "two")
    assert length(Session.history(s)) == 6
    :ok = Session.reset(s)
    assert Session.history(s) == []
  end
end
