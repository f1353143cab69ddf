defmodule AxonPort.TestHelpers do
  @moduledoc """
  Helpers for ExUnit suites that drive the real Python worker.

  Every wait here polls to a deadline; nothing sleeps for a fixed time.
  """

  import ExUnit.Assertions

  @py_dir Path.expand("py", __DIR__)

  @doc "The launcher (the package's `priv/axon_port`, found at run time)."
  def launcher, do: AxonPort.Python.launcher()

  @doc "The Python interpreter the launcher would use."
  def python do
    case AxonPort.Python.venv() do
      nil -> System.get_env("AXON_PORT_PYTHON") || flunk("no venv and no AXON_PORT_PYTHON")
      venv -> Path.join(venv, "bin/python")
    end
  end

  @doc "Environment for a worker that can import the fixture modules."
  def fixture_env do
    pythonpath =
      Enum.join(Enum.reject([@py_dir, System.get_env("PYTHONPATH")], &(&1 in [nil, ""])), ":")

    %{"PYTHONPATH" => pythonpath}
  end

  @doc "Worker options for a worker loading `axon_fixture` (plus `extra`)."
  def worker_opts(extra \\ []) do
    {modules, extra} = Keyword.pop(extra, :modules, [])

    Keyword.merge(
      [env: fixture_env(), modules: ["axon_fixture" | modules], log_level: :info],
      extra
    )
  end

  @doc """
  Makes this node distributed (epmd + `Node.start/1`) if `mix test` was run without
  `--sname`, then starts a peer node (`:peer`) with our code paths and the `:axon_port`
  application, configured with this node's launcher and Python settings (a peer loads
  no config files, as an app that configures them at run time). Returns
  `{peer, peer_node}`; stop it with `:peer.stop/1`.
  """
  def start_peer do
    unless Node.alive?() do
      {_, 0} = System.cmd("epmd", ["-daemon"])

      eventually(
        fn ->
          match?(
            {:ok, _},
            Node.start(:"axon_test_#{System.unique_integer([:positive])}@127.0.0.1")
          )
        end,
        10_000,
        "distribution to start"
      )
    end

    host = node() |> Atom.to_string() |> String.split("@") |> List.last() |> to_charlist()

    {:ok, peer, peer_node} =
      :peer.start_link(%{
        name: :"axon_peer_#{System.unique_integer([:positive])}",
        host: host,
        longnames: String.contains?(List.to_string(host), "."),
        args: [~c"-setcookie", Atom.to_charlist(Node.get_cookie()), ~c"-pa" | :code.get_path()]
      })

    :ok = :rpc.call(peer_node, :application, :load, [:axon_port])
    :ok = :rpc.call(peer_node, :application, :set_env, [:axon_port, :launcher, launcher()])
    python = Application.get_env(:axon_port, :python, [])
    :ok = :rpc.call(peer_node, :application, :set_env, [:axon_port, :python, python])
    {:ok, _} = :rpc.call(peer_node, Application, :ensure_all_started, [:axon_port])
    {peer, peer_node}
  end

  @doc """
  Starts the MCP server script `server` (tests/support/mcp_servers/...) as a
  streamable-HTTP server on a free loopback port; returns the port once it listens.
  Killed by pid when the test exits (closing a port gives stdin EOF only, which an
  HTTP server ignores).
  """
  def start_http_mcp(server) do
    {:ok, sock} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(sock)
    :gen_tcp.close(sock)

    proc =
      Port.open({:spawn_executable, python()}, [
        :binary,
        args: [server, "--http", Integer.to_string(port)]
      ])

    {:os_pid, os_pid} = Port.info(proc, :os_pid)
    ExUnit.Callbacks.on_exit(fn -> System.cmd("kill", ["-9", Integer.to_string(os_pid)]) end)

    eventually(
      fn ->
        case :gen_tcp.connect({127, 0, 0, 1}, port, [], 200) do
          {:ok, s} -> :gen_tcp.close(s) == :ok
          _ -> false
        end
      end,
      20_000,
      "the HTTP MCP server to listen"
    )

    port
  end

  @doc "Polls `fun` until it returns a truthy value or `timeout` ms pass; returns the value."
  def eventually(fun, timeout \\ 5_000, what \\ "condition") do
    deadline = System.monotonic_time(:millisecond) + timeout
    do_eventually(fun, deadline, what, 1)
  end

  defp do_eventually(fun, deadline, what, backoff) do
    case fun.() do
      result when result not in [nil, false] ->
        result

      _ ->
        if System.monotonic_time(:millisecond) > deadline do
          flunk("timed out waiting for #{what}")
        else
          Process.sleep(backoff)
          do_eventually(fun, deadline, what, min(backoff * 2, 50))
        end
    end
  end

  @doc "Asserts the OS process `os_pid` exits within `timeout` ms (polled)."
  def assert_os_pid_exited(os_pid, timeout \\ 2_000) do
    assert AxonPort.OS.wait_exit(os_pid, timeout),
           "OS process #{os_pid} still running after #{timeout} ms"
  end

  @doc "Asserts the OS process `os_pid` is running."
  def assert_os_pid_running(os_pid) do
    assert AxonPort.OS.alive?(os_pid), "OS process #{os_pid} is not running"
  end

  @doc "Waits until the worker registered as `name` is a live pid other than `old`."
  def await_restart(name, old, timeout \\ 15_000) do
    eventually(
      fn ->
        case GenServer.whereis(name) do
          pid when is_pid(pid) and pid != old -> pid
          _ -> nil
        end
      end,
      timeout,
      "#{inspect(name)} to restart"
    )
  end

  @doc "Attaches a local telemetry handler that forwards events (of `worker`, if given) to the caller."
  def forward_telemetry(events, worker \\ nil) do
    id = {__MODULE__, make_ref()}
    me = self()

    # Handlers are global: with `worker`, only its events (async tests run other
    # workers at the same time).
    :ok =
      AxonPort.Telemetry.attach(
        id,
        events,
        fn event, meas, meta, _ ->
          if worker == nil or meta[:worker] == worker,
            do: send(me, {:telemetry, event, meas, meta})
        end
      )

    ExUnit.Callbacks.on_exit(fn -> AxonPort.Telemetry.detach(id) end)
    id
  end

  @doc "Reads one `{packet,4}` ETF frame from a raw port, decoded safely."
  def recv_frame(port, timeout \\ 10_000) do
    receive do
      {^port, {:data, bin}} -> :erlang.binary_to_term(bin, [:safe])
    after
      timeout -> flunk("no frame from the worker within #{timeout} ms")
    end
  end
end
