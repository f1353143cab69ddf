defmodule AxonPort.SmokeTest do
  # The raw protocol, with nothing of the client in between: Port.open with
  # {:packet, 4}, ETF frames, binary_to_term(bin, [:safe]).
  use ExUnit.Case, async: true

  import AxonPort.TestHelpers

  setup_all do
    # binary_to_term(bin, [:safe]) creates no atoms: the protocol's fixed list
    # of frame atoms must exist before the first decode.
    _ = AxonPort.Protocol.frame_atoms()
    :ok
  end

  defp open(mode) do
    fds = if mode == :fds, do: ["--fds", "3,4"], else: []
    stdio = if mode == :fds, do: [:nouse_stdio], else: []

    env = for {k, v} <- fixture_env(), do: {to_charlist(k), to_charlist(v)}

    Port.open(
      {:spawn_executable, launcher()},
      [:binary, {:packet, 4}, :exit_status, :hide, env: env] ++
        stdio ++ [args: ["--codec", "etf", "--module", "axon_fixture"] ++ fds]
    )
  end

  defp send_frame(port, term), do: Port.command(port, :erlang.term_to_binary(term))

  for mode <- [:fds, :stdio] do
    test "ping and call over #{mode}" do
      port = open(unquote(mode))
      {:os_pid, os_pid} = Port.info(port, :os_pid)

      ready = recv_frame(port)
      assert %{type: :ready, protocol: 1, codec: "etf", pid: ^os_pid} = ready
      assert %{"max_frame" => max_frame} = ready.limits
      assert is_integer(max_frame)

      send_frame(port, %{op: :ping, id: 1})
      assert %{type: :pong, id: 1} = recv_frame(port)

      send_frame(port, %{"op" => "call", "id" => 2, "function" => "add", "args" => [2, 40]})
      assert %{type: :result, id: 2, output: 42} = recv_frame(port)

      # A stray print in user code never reaches the frame stream.
      send_frame(port, %{op: :call, id: 3, function: "noisy", args: ["x"], kwargs: %{}})
      assert %{type: :result, id: 3, output: "x"} = recv_frame(port)

      send_frame(port, %{op: :ping, id: 4})
      assert %{type: :pong, id: 4} = recv_frame(port)

      Port.close(port)
      assert_os_pid_exited(os_pid)
    end
  end

  test "the launcher execs python: the port's OS pid is the worker's own" do
    port = open(:fds)
    {:os_pid, os_pid} = Port.info(port, :os_pid)
    assert %{type: :ready} = recv_frame(port)
    send_frame(port, %{op: :call, id: 1, function: "getpid", args: []})
    assert %{type: :result, id: 1, output: ^os_pid} = recv_frame(port)
    Port.close(port)
    assert_os_pid_exited(os_pid)
  end

  test "a frame that is not ETF gets an error frame and the stream stays in sync" do
    port = open(:fds)
    assert %{type: :ready} = recv_frame(port)
    Port.command(port, <<1, 2, 3, 4, 5>>)
    assert %{type: :error, id: nil, error: %{"kind" => "bad_frame"}} = recv_frame(port)
    send_frame(port, %{op: :ping, id: 7})
    assert %{type: :pong, id: 7} = recv_frame(port)
    Port.close(port)
  end

  test "shutdown answers, then the worker exits 0" do
    port = open(:stdio)
    assert %{type: :ready} = recv_frame(port)
    send_frame(port, %{op: :shutdown, id: 9})
    assert %{type: :result, id: 9} = recv_frame(port)
    assert_receive {^port, {:exit_status, 0}}, 5_000
  end
end
