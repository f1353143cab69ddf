defmodule AxonPort.PeerTest do
  # Distribution faults, with real :peer nodes: a node stopped while requests
  # and streams are in flight, cancels that name their own request although
  # ids collide across nodes, and a pool's strategy seen from another node.
  use ExUnit.Case, async: false

  import AxonPort.TestHelpers

  alias AxonPort.{Pool, Worker}

  setup do
    {peer, node} = start_peer()
    on_exit(fn -> catch_exit(:peer.stop(peer)) end)
    %{peer: peer, peer_node: node}
  end

  test "every caller and stream receiver gets one terminal when the worker's node stops",
       %{peer: peer, peer_node: node} do
    id = {:w, System.unique_integer([:positive])}
    spec = Supervisor.child_spec({Worker, worker_opts()}, id: id)
    {:ok, w} = :rpc.call(node, Supervisor, :start_child, [AxonPort.Supervisor, spec])
    assert node(w) == node

    callers =
      for _ <- 1..4 do
        Task.async(fn -> AxonPort.call(w, "sleep_ms", [30_000], %{}, timeout: 60_000) end)
      end

    me = self()

    refs =
      for _ <- 1..3 do
        {:ok, {^w, ref}} = AxonPort.stream(w, AxonPort.ReliabilitySupport.blocking_spec(me), "go")
        ref
      end

    for _ <- refs, do: assert_receive({:tool_blocked, _}, 15_000)
    eventually(fn -> :rpc.call(node, Worker, :load, [w]) == 7 end, 10_000, "requests in flight")

    :peer.stop(peer)

    for t <- callers do
      assert {:error, {:worker_down, _}} = Task.await(t, 10_000)
    end

    for ref <- refs do
      assert_receive {:axon_port, ^ref, {:error, {:worker_down, reason}}}, 10_000
      assert reason in [:noconnection, :noproc]
      refute_receive {:axon_port, ^ref, {:error, _}}, 100
      refute_received {:axon_port, ^ref, {:result, _}}
    end
  end

  test "a timed-out caller's cancel names its own request, not another node's with the same id",
       %{peer_node: node} do
    w = start_supervised!({Worker, worker_opts()})
    id = 4242

    frame = fn ms ->
      Worker.encode(%{op: :call, id: id, function: "sleep_ms", args: [ms], kwargs: %{}})
    end

    # A local request holds id 4242...
    local =
      Task.async(fn ->
        GenServer.call(w, {:request, id, frame.(1_500), [op: :call, ref: make_ref()]}, 10_000)
      end)

    eventually(fn -> Worker.load(w) == 1 end)

    # ...and a caller on the peer node sends the same id (its own counter),
    # times out and cancels.
    remote =
      :rpc.call(node, AxonPort.ReliabilitySupport, :timed_out_request, [w, id, frame.(5_000), 300])

    assert remote == :timed_out
    assert {:ok, 1_500} = Task.await(local, 10_000)
    eventually(fn -> Worker.load(w) == 0 end)
  end

  test "a pool's :round_robin strategy is followed by picks from another node",
       %{peer_node: node} do
    name = :"rr_#{System.unique_integer([:positive])}"
    start_supervised!({Pool, name: name, size: 2, strategy: :round_robin, worker: worker_opts()})
    eventually(fn -> length(Pool.members(name)) == 2 end, 20_000, "pool members")
    eventually(fn -> length(:rpc.call(node, Pool, :members, [name])) == 2 end)

    picks = for _ <- 1..10, do: :rpc.call(node, Pool, :pick, [name])
    assert Enum.all?(picks, &is_pid/1)

    for [a, b] <- Enum.chunk_every(picks, 2, 1, :discard) do
      assert a != b
    end
  end
end
