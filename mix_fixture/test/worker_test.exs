defmodule AxonPort.WorkerTest do
  use ExUnit.Case, async: true

  import AxonPort.TestHelpers

  alias AxonPort.{Error, Worker}

  describe "requests" do
    setup do
      pid = start_supervised!({Worker, worker_opts()})
      %{w: pid}
    end

    test "ping, call with args and kwargs, describe", %{w: w} do
      assert :ok = AxonPort.ping(w)
      assert {:ok, 42} = AxonPort.call(w, "add", [2, 40])
      assert {:ok, [[1], %{"x" => "y"}]} = AxonPort.call(w, :kwargs_echo, [1], %{x: "y"})
      assert {:ok, %{} = description} = AxonPort.describe(w)
      assert inspect(description) =~ "sleep_ms"
    end

    test "stats counts what the worker served", %{w: w} do
      assert {:ok, 3} = AxonPort.call(w, "add", [1, 2])
      assert {:ok, %{"served_total" => n, "inflight" => _}} = AxonPort.stats(w)
      assert n >= 1
    end

    test "terms round-trip through the codec", %{w: w} do
      value = %{
        "list" => [1, 2.5, "three", nil, true, false],
        "big" => 2 ** 100,
        "neg" => -7,
        "tuple" => {1, "two"},
        "bytes" => <<255, 0, 1>>,
        "nested" => %{"a" => [%{"b" => []}]}
      }

      assert {:ok, ^value} = AxonPort.call(w, "echo", [value])
    end

    test "a Python exception is an error, and the worker keeps serving", %{w: w} do
      assert {:error, %Error{message: msg, retryable: false} = err} = AxonPort.call(w, "boom")
      assert msg =~ "boom"
      assert is_binary(err.kind)
      assert {:error, %Error{kind: "unknown_function"}} = AxonPort.call(w, "nope")
      assert :ok = AxonPort.ping(w)
    end

    test "requests are served concurrently: a slow call never delays a ping", %{w: w} do
      slow =
        Task.async(fn -> AxonPort.call(w, "async_sleep_ms", [1_500], %{}, timeout: 10_000) end)

      eventually(fn -> Worker.load(w) == 1 end, 5_000, "the slow call to be in flight")
      {micros, :ok} = :timer.tc(fn -> AxonPort.ping(w) end)
      assert micros < 1_000_000
      assert {:ok, 1_500} = Task.await(slow, 10_000)
    end

    test "64 concurrent callers each get their own answer", %{w: w} do
      results =
        1..64
        |> Task.async_stream(fn i -> AxonPort.call(w, "add", [i, 1]) end, max_concurrency: 64)
        |> Enum.map(fn {:ok, r} -> r end)

      assert results == Enum.map(1..64, &{:ok, &1 + 1})
    end

    test "a caller timeout cancels the request in the worker", %{w: w} do
      assert {:error, %Error{kind: "timeout"}} =
               AxonPort.call(w, "async_sleep_ms", [5_000], %{}, timeout: 100)

      # The cancel frees the worker's slot: nothing stays in flight.
      eventually(fn -> Worker.load(w) == 0 end, 5_000, "the cancelled call to finish")
      assert :ok = AxonPort.ping(w)
    end

    test "a request over the worker's max_frame fails locally", %{w: w} do
      max = Worker.info(w).ready.limits["max_frame"]
      big = :binary.copy("x", max + 1)
      assert {:error, %Error{kind: "bad_frame"}} = AxonPort.call(w, "echo", [big])
      assert :ok = AxonPort.ping(w)
    end

    test "the ready frame's pid is the port's OS pid", %{w: w} do
      info = Worker.info(w)
      assert info.ready.pid == info.os_pid
      assert {:ok, info.os_pid} == AxonPort.call(w, "getpid")
    end
  end

  test "idle_spin_us reaches the worker's command line, and 0 serves as ever" do
    w = start_supervised!({Worker, worker_opts(idle_spin_us: 0)})
    argv = File.read!("/proc/#{Worker.os_pid(w)}/cmdline") |> String.split(<<0>>)
    assert ["--idle-spin-us", "0"] in Enum.chunk_every(argv, 2, 1)

    for i <- 1..20, do: assert({:ok, ^i} = AxonPort.call(w, "add", [i, 0]))
  end

  test "stdio mode serves the same requests" do
    w = start_supervised!({Worker, worker_opts(mode: :stdio)})
    assert :ok = AxonPort.ping(w)
    assert {:ok, 3} = AxonPort.call(w, "add", [1, 2])
    assert {:ok, "x"} = AxonPort.call(w, "noisy", ["x"])
    assert :ok = AxonPort.ping(w)
  end

  test "Python log records become Logger events with the request id and logger name" do
    me = self()
    handler = :"axon_log_#{System.unique_integer([:positive])}"

    :ok =
      :logger.add_handler(handler, AxonPort.TestLogHandler, %{config: %{pid: me}, level: :all})

    on_exit(fn -> :logger.remove_handler(handler) end)
    w = start_supervised!({Worker, worker_opts()})

    assert {:ok, true} = AxonPort.call(w, "log_warning", ["hello from python"])

    assert_receive {:log_event, %{level: :warning, msg: msg, meta: meta}}, 5_000
    assert IO.chardata_to_string(msg) =~ "hello from python"
    assert meta.py_logger == "axon_fixture"
    assert is_integer(meta.request_id)
    assert meta.os_pid == Worker.os_pid(w)
  end

  describe "lifecycle" do
    test "killing the worker with 100 requests in flight answers all 100, restarts, serves" do
      name = :"worker_kill_#{System.unique_integer([:positive])}"
      start_supervised!({Worker, worker_opts(name: name, max_inflight: 1_000)})
      old = GenServer.whereis(name)
      os_pid = Worker.os_pid(name)

      tasks =
        for _ <- 1..100 do
          Task.async(fn ->
            AxonPort.call(name, "async_sleep_ms", [60_000], %{}, timeout: 60_000)
          end)
        end

      eventually(fn -> Worker.load(name) == 100 end, 10_000, "100 requests in flight")
      assert :ok = AxonPort.OS.kill(os_pid)

      results = Task.await_many(tasks, 10_000)
      assert length(results) == 100
      assert Enum.all?(results, &match?({:error, {:worker_exit, _}}, &1)), inspect(results)
      assert_os_pid_exited(os_pid)

      new = await_restart(name, old)
      assert new != old
      assert :ok = AxonPort.ping(name)
      assert {:ok, 5} = AxonPort.call(name, "add", [2, 3])
      assert Worker.os_pid(name) != os_pid
    end

    test "stopping the worker closes the port and the OS process exits" do
      {:ok, w} = GenServer.start(Worker, worker_opts())
      os_pid = Worker.os_pid(w)
      assert_os_pid_running(os_pid)
      :ok = GenServer.stop(w)
      assert_os_pid_exited(os_pid)
    end

    test "killing the owner leaves no OS process behind" do
      {:ok, w} = GenServer.start(Worker, worker_opts())
      os_pid = Worker.os_pid(w)
      # Even while a synchronous function blocks a worker thread.
      spawn(fn -> AxonPort.call(w, "sleep_ms", [30_000], %{}, timeout: 60_000) end)
      eventually(fn -> Worker.load(w) == 1 end, 5_000, "the blocking call")
      Process.exit(w, :kill)
      assert_os_pid_exited(os_pid)
    end

    test "pending callers get {:error, _} when the worker stops" do
      {:ok, w} = GenServer.start(Worker, worker_opts())

      task =
        Task.async(fn -> AxonPort.call(w, "async_sleep_ms", [30_000], %{}, timeout: 60_000) end)

      eventually(fn -> Worker.load(w) == 1 end, 5_000, "the call in flight")
      :ok = GenServer.stop(w, :shutdown)
      assert {:error, {:worker_exit, :shutdown}} = Task.await(task)
    end

    test "a launcher that fails makes start_link fail and leaves nothing running" do
      Process.flag(:trap_exit, true)

      assert {:error, {:worker_exit, status}} =
               Worker.start_link(
                 worker_opts(
                   env: %{
                     "AXON_PORT_VENV" => "/nonexistent/venv",
                     "AXON_PORT_PYTHON" => "/nonexistent/python"
                   }
                 )
               )

      assert status == 127
    end

    test "a missing launcher makes start_link fail with the reason" do
      Process.flag(:trap_exit, true)

      assert {:error, {:launcher_failed, "/nonexistent/axon_port", :enoent}} =
               Worker.start_link(worker_opts(launcher: "/nonexistent/axon_port"))
    end

    test "a module that fails to import makes start_link fail" do
      Process.flag(:trap_exit, true)

      assert {:error, {:worker_exit, status}} =
               Worker.start_link(worker_opts(modules: ["no_such_module_xyz"]))

      assert status != 0
    end

    test "calls to a dead worker name return :noproc" do
      assert {:error, :noproc} = AxonPort.ping(:no_such_worker_here)
    end
  end
end
