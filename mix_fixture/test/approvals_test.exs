defmodule AxonPort.ApprovalsTest do
  use ExUnit.Case, async: true

  import AxonPort.TestHelpers

  alias AxonPort.{Error, Session, Worker}

  @moduletag :agents

  defp script(responses), do: %{"provider" => "script", "responses" => responses}

  setup do
    %{w: start_supervised!({Worker, worker_opts([])})}
  end

  # A bank transfer a person approves: the Elixir tool only runs once approved.
  defp teller(me, responses) do
    transfer = %{
      name: "transfer",
      description: "Sends money to a payee.",
      parameters: %{
        type: "object",
        properties: %{to: %{type: "string"}, amount: %{type: "integer"}},
        required: ["to", "amount"]
      },
      requires_approval: true,
      handler:
        {:elixir,
         fn %{"to" => to, "amount" => amount} ->
           send(me, {:transferred, to, amount})
           "sent #{amount} to #{to}"
         end}
    }

    [model: script(responses), instructions: "You are a bank teller.", tools: [transfer]]
  end

  @two_transfers %{
    "tool_calls" => [
      %{"tool" => "transfer", "args" => %{"to" => "alice", "amount" => 50}, "id" => "t1"},
      %{"tool" => "transfer", "args" => %{"to" => "mallory", "amount" => 5000}, "id" => "t2"}
    ]
  }

  test "a transfer waits for approval; approve one, deny one, resume, continue", %{w: w} do
    me = self()
    spec = teller(me, [@two_transfers, "Sent 50 to alice; the other transfer was denied."])
    assert {:ok, "teller"} = AxonPort.define_agent(w, "teller", spec)

    assert {:ok, %{output: nil, deferred: deferred, messages: first}} =
             AxonPort.run(w, "teller", "Pay alice 50 and mallory 5000")

    assert %{"approvals" => [t1, t2], "calls" => []} = deferred
    assert %{"tool_call_id" => "t1", "tool_name" => "transfer"} = t1
    assert t2["args"] == %{"to" => "mallory", "amount" => 5000}
    refute_received {:transferred, _, _}

    assert {:ok, %{output: output, messages: resumed} = result} =
             AxonPort.resume(w, "teller", first,
               approvals: %{"t1" => true, "t2" => %{message: "Over the daily limit."}}
             )

    refute Map.has_key?(result, :deferred)
    assert output == "Sent 50 to alice; the other transfer was denied."
    assert_received {:transferred, "alice", 50}
    refute_received {:transferred, "mallory", _}

    returns =
      for %{"parts" => parts} <- resumed,
          %{"part_kind" => "tool-return"} = p <- parts,
          into: %{},
          do: {p["tool_call_id"], p["content"]}

    assert returns == %{"t1" => "sent 50 to alice", "t2" => "Over the daily limit."}

    # A third run accepts the whole conversation.
    assert {:ok, %{output: "You're welcome."}} =
             AxonPort.run(w, teller(me, ["You're welcome."]), "Thanks!", history: first ++ resumed)
  end

  test "a session holds the pending approval and resumes it", %{w: w} do
    me = self()
    spec = teller(me, [@two_transfers, "Both sent."])
    {:ok, s} = Session.start_link(target: w, agent: spec)

    assert {:ok, %{deferred: %{"approvals" => [_, _]}}} = Session.chat(s, "Pay both")

    assert %{"approvals" => [%{"tool_call_id" => "t1"}, %{"tool_call_id" => "t2"}]} =
             Session.pending(s)

    assert {:ok, %{output: "Both sent."}} =
             Session.resume(s, approvals: %{"t1" => true, "t2" => true})

    assert Session.pending(s) == nil
    assert_received {:transferred, "alice", 50}
    assert_received {:transferred, "mallory", 5000}
    assert [_ | _] = Session.history(s)
  end

  test "bad decisions are a bad_request", %{w: w} do
    spec = teller(self(), [@two_transfers, "x"])
    {:ok, %{messages: first}} = AxonPort.run(w, spec, "Pay")

    assert {:error, %Error{kind: "bad_request", message: message}} =
             AxonPort.resume(w, spec, first, approvals: %{"t1" => "maybe"})

    assert message =~ "must be true, false"
  end
end
