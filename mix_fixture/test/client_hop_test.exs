defmodule AxonPort.ClientHopTest do
  # The direct path: callers write their own frames; the worker only routes.
  use ExUnit.Case, async: false

  import AxonPort.TestHelpers

  alias AxonPort.{Error, Worker}

  setup do
    %{w: start_supervised!({Worker, worker_opts()})}
  end

  test "a call makes no GenServer call to the worker: it only receives the port's reply",
       %{w: w} do
    assert {:ok, 3} = AxonPort.call(w, "add", [1, 2])
    :erlang.trace(w, true, [:receive, {:tracer, self()}])
    assert {:ok, 5} = AxonPort.call(w, "add", [2, 3])
    :erlang.trace(w, false, [:receive])

    received = collect_trace(w, [])
    refute Enum.any?(received, &match?({:"$gen_call", _, _}, &1))
    assert Enum.any?(received, &match?({_port, {:data, _}}, &1))
  end

  test "the worker sends a direct call's reply on undecoded: its frames start as peek/1 expects",
       %{w: w} do
    # If the Python encoder's layout changed, replies would still arrive (the
    # worker decodes what it cannot peek), only slower: this pins the fast path.
    assert {:ok, 3} = AxonPort.call(w, "add", [1, 2])
    :erlang.trace(w, true, [:send, {:tracer, self()}])
    assert {:ok, 5} = AxonPort.call(w, "add", [2, 3])
    assert :ok = AxonPort.ping(w)
    assert {:error, %Error{kind: "unknown_function"}} = AxonPort.call(w, "no_such_function", [])
    :erlang.trace(w, false, [:send])

    me = self()
    sent = collect_sends(w, [])
    frames = for {{_mref, :frame, bin}, ^me} <- sent, do: :erlang.binary_to_term(bin)
    assert [%{type: :result, output: 5}, %{type: :pong}, %{type: :error}] = frames
  end

  test "a timed-out direct call cancels its own request and gets one answer", %{w: w} do
    other = Task.async(fn -> AxonPort.call(w, "sleep_ms", [1_500], %{}, timeout: 10_000) end)

    assert {:error, %Error{kind: "timeout"}} =
             AxonPort.call(w, "sleep_ms", [30_000], %{}, timeout: 200)

    # The cancel reached the worker (it stops sleeping-on-our-behalf) and named only ours.
    assert {:ok, 1_500} = Task.await(other, 10_000)
    eventually(fn -> match?({:ok, %{"inflight" => 0}}, AxonPort.stats(w)) end)
    assert Worker.load(w) == 0
    refute_received {_, {:ok, _}}
  end

  test "direct callers in flight get exactly one answer when the worker is killed", %{w: w} do
    me = self()

    tasks =
      for _ <- 1..5 do
        Task.async(fn ->
          r = AxonPort.call(w, "sleep_ms", [30_000], %{}, timeout: 60_000)
          send(me, {:answered, self()})
          r
        end)
      end

    eventually(fn -> Worker.load(w) == 5 end)
    Process.exit(w, :kill)

    for t <- tasks do
      assert {:error, {:worker_down, :killed}} = Task.await(t, 5_000)
      pid = t.pid
      assert_received {:answered, ^pid}
      refute_received {:answered, ^pid}
    end
  end

  test "a direct caller does not monitor the worker (the heir answers if it dies)", %{w: w} do
    task = Task.async(fn -> AxonPort.call(w, "sleep_ms", [500], %{}, timeout: 10_000) end)
    eventually(fn -> Worker.load(w) == 1 end)
    {:monitored_by, watchers} = Process.info(w, :monitored_by)
    refute task.pid in watchers
    assert Process.whereis(AxonPort.Worker.Heir) in watchers
    assert {:ok, 500} = Task.await(task, 10_000)
  end

  test "after a worker is killed its heir withdraws the direct route", %{w: w} do
    assert AxonPort.Worker.Direct.route(w) != nil
    Process.exit(w, :kill)
    eventually(fn -> AxonPort.Worker.Direct.route(w) == nil end)
    assert {:error, _} = AxonPort.call(w, "add", [1, 2])
  end

  test "a restarted heir is named again, so the worker's direct callers are still answered",
       %{w: w} do
    old = Process.whereis(AxonPort.Worker.Heir)
    Process.exit(old, :kill)

    eventually(fn ->
      heir = Process.whereis(AxonPort.Worker.Heir)
      route = AxonPort.Worker.Direct.route(w)
      heir not in [nil, old] and route != nil and :ets.info(elem(route, 1), :heir) == heir
    end)

    assert {:ok, 3} = AxonPort.call(w, "add", [1, 2])
    task = Task.async(fn -> AxonPort.call(w, "sleep_ms", [30_000], %{}, timeout: :infinity) end)
    eventually(fn -> Worker.load(w) == 1 end)
    Process.exit(w, :kill)
    assert {:error, {:worker_down, :killed}} = Task.await(task, 5_000)
  end

  test "a caller whose worker died just before it reserved answers itself with the reason" do
    # A table as the heir leaves it: marked closed (the route was still published).
    tab = :ets.new(:closed_worker, [:set, :public])
    :ets.insert(tab, {:"$closed", {:closed, :boom}})
    route = {nil, tab, :atomics.new(1, []), nil}

    assert {:error, {:worker_down, :boom}} =
             AxonPort.Worker.Direct.request(self(), route, %{op: :ping}, 1_000)

    assert :ets.tab2list(tab) == [{:"$closed", {:closed, :boom}}]
  end

  test "direct callers get {:worker_exit, _} when the worker's OS process dies", %{w: w} do
    task = Task.async(fn -> AxonPort.call(w, "sleep_ms", [30_000], %{}, timeout: 60_000) end)
    eventually(fn -> Worker.load(w) == 1 end)
    System.cmd("kill", ["-9", to_string(Worker.os_pid(w))])
    assert {:error, {:worker_exit, 137}} = Task.await(task, 10_000)
  end

  defp collect_sends(w, acc) do
    receive do
      {:trace, ^w, :send, msg, to} -> collect_sends(w, [{msg, to} | acc])
    after
      200 -> Enum.reverse(acc)
    end
  end

  defp collect_trace(w, acc) do
    receive do
      {:trace, ^w, :receive, msg} -> collect_trace(w, [msg | acc])
    after
      200 -> Enum.reverse(acc)
    end
  end
end
