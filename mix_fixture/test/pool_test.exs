defmodule AxonPort.PoolTest do
  use ExUnit.Case, async: false

  import AxonPort.TestHelpers

  alias AxonPort.{Pool, Worker}

  test "least-loaded routing avoids a busy worker" do
    pool = :"pool_ll_#{System.unique_integer([:positive])}"
    start_supervised!({Pool, name: pool, size: 2, worker: worker_opts(), strategy: :least_loaded})
    eventually(fn -> length(Pool.members(pool)) == 2 end, 10_000, "two pool members")
    [busy, idle] = Pool.members(pool)

    for _ <- 1..3 do
      spawn(fn -> AxonPort.call(busy, "async_sleep_ms", [5_000], %{}, timeout: 10_000) end)
    end

    eventually(fn -> Worker.load(busy) == 3 end, 5_000, "the busy worker to be busy")
    for _ <- 1..20, do: assert(Pool.pick(pool) == idle)
    assert {:ok, 3} = AxonPort.call({:pool, pool}, "add", [1, 2])
  end

  test "round-robin routing spreads requests and a dead worker is replaced" do
    pool = :"pool_rr_#{System.unique_integer([:positive])}"
    start_supervised!({Pool, name: pool, size: 2, worker: worker_opts(), strategy: :round_robin})
    eventually(fn -> length(Pool.members(pool)) == 2 end, 10_000, "two pool members")

    pids = for _ <- 1..10, into: MapSet.new(), do: elem(AxonPort.call({:pool, pool}, "getpid"), 1)
    assert MapSet.size(pids) == 2

    # A worker crash: the pool's supervisor restarts it, and it rejoins the group.
    [victim | _] = Pool.members(pool)
    os_pid = Worker.os_pid(victim)
    :ok = AxonPort.OS.kill(os_pid)
    assert_os_pid_exited(os_pid)

    eventually(
      fn -> length(Pool.members(pool)) == 2 and victim not in Pool.members(pool) end,
      15_000,
      "the worker to be replaced"
    )

    assert {:ok, 2} = AxonPort.call({:pool, pool}, "add", [1, 1])
  end

  describe "across nodes" do
    setup do
      {peer, node} = start_peer()
      Process.put(:peer, peer)
      on_exit(fn -> catch_exit(:peer.stop(peer)) end)
      %{peer_node: node}
    end

    @tag :agents
    test "a pool spans two BEAM nodes and runs reach workers on both", %{peer_node: peer_node} do
      pool = :"pool_dist_#{System.unique_integer([:positive])}"
      opts = [name: pool, size: 1, worker: worker_opts(), strategy: :round_robin]

      start_supervised!({Pool, opts})

      {:ok, _} =
        :rpc.call(peer_node, Supervisor, :start_child, [AxonPort.Supervisor, {Pool, opts}])

      eventually(fn -> length(Pool.members(pool)) == 2 end, 20_000, "members on both nodes")
      nodes = pool |> Pool.members() |> Enum.map(&node/1) |> Enum.sort()
      assert nodes == Enum.sort([node(), peer_node])

      # Runs through the pool reach workers on both nodes.
      served =
        for i <- 1..6 do
          {:ok, {worker, ref}} = AxonPort.stream({:pool, pool}, %{model: "test"}, "hello #{i}")

          assert_receive {:axon_port, ^ref, {:result, %{output: _}}}, 30_000
          node(worker)
        end

      assert served |> Enum.uniq() |> Enum.sort() == nodes

      for i <- 1..6 do
        assert {:ok, %{output: _}} = AxonPort.run({:pool, pool}, %{model: "test"}, "run #{i}")
      end

      # Calls land on two distinct OS processes, one per node.
      os_pids =
        for _ <- 1..6, into: MapSet.new(), do: elem(AxonPort.call({:pool, pool}, "getpid"), 1)

      assert MapSet.size(os_pids) == 2

      # Stopping the peer node leaves no worker process behind.
      [remote] = Pool.members(pool) |> Enum.filter(&(node(&1) == peer_node))
      remote_os_pid = Worker.os_pid(remote)
      :peer.stop(Process.get(:peer))
      assert_os_pid_exited(remote_os_pid, 5_000)
      eventually(fn -> length(Pool.members(pool)) == 1 end, 5_000, "the remote member to leave")
      assert {:ok, 4} = AxonPort.call({:pool, pool}, "add", [2, 2])
    end
  end
end
