defmodule AxonPort.ReliabilityTest do
  # The client never trusts the worker's frames, and every caller and stream
  # receiver gets exactly one terminal message whatever happens to the worker.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import AxonPort.TestHelpers

  alias AxonPort.{Error, Worker}

  @fake Path.expand("support/fake/fake_worker.py", __DIR__)

  # A launcher that execs the fake worker (it ignores the worker's arguments).
  defp fake_launcher do
    dir = Path.join(System.tmp_dir!(), "axon_fake_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    path = Path.join(dir, "fake_worker")
    File.write!(path, "#!/bin/sh\nexec '#{python()}' '#{@fake}' \"$@\"\n")
    File.chmod!(path, 0o755)
    on_exit(fn -> File.rm_rf!(dir) end)
    path
  end

  defp fake_opts(env, extra) do
    Keyword.merge([launcher: fake_launcher(), mode: :stdio, env: env], extra)
  end

  defp start_fake_sup(name, env) do
    children = [{Worker, fake_opts(env, name: name)}]
    opts = [strategy: :one_for_one, max_restarts: 1_000, max_seconds: 1]

    start_supervised!(%{
      id: name,
      start: {Supervisor, :start_link, [children, opts]},
      type: :supervisor
    })
  end

  describe "malformed worker frames" do
    for c <- ~w(log_message_map log_level_tuple error_kind_map tool_call_tool_map
                unknown_type missing_id not_a_map unknown_atom result_usage_bin) do
      test "#{c}: a protocol error for the callers and a clean restart" do
        name = :"fake_#{unquote(c)}"
        start_fake_sup(name, %{"FUZZ_RATE" => "0"})
        w = GenServer.whereis(name)
        ref = Process.monitor(w)

        # Another caller in flight when the bad frame arrives.
        other = Task.async(fn -> AxonPort.call(name, "echo", ["hang"], %{}, timeout: 10_000) end)
        eventually(fn -> Worker.load(name) == 1 end)

        log =
          capture_log(fn ->
            assert {:error, reason} =
                     AxonPort.call(name, "echo", [unquote(c)], %{}, timeout: 10_000)

            assert_reason(unquote(c), reason)

            assert {:error, {:worker_exit, {:protocol_error, _}}} = Task.await(other)
            assert_receive {:DOWN, ^ref, :process, ^w, {:shutdown, _}}, 5_000
          end)

        assert log =~ "protocol error"
        refute log =~ "terminating"

        # Restarted and serving.
        eventually(fn -> GenServer.whereis(name) not in [nil, w] end)
        assert {:ok, [1]} = AxonPort.call(name, "echo", [1], %{}, retry: [base_delay: 50])
      end
    end

    test "fuzz: random well-framed terms; every caller is answered exactly once" do
      for seed <- 1..2 do
        name = :"fuzz_#{seed}"
        sup = start_fake_sup(name, %{"FUZZ_SEED" => "#{seed}", "FUZZ_RATE" => "0.15"})

        log =
          capture_log(fn ->
            results =
              1..8
              |> Task.async_stream(
                fn i ->
                  for j <- 1..20 do
                    AxonPort.call(name, "echo", [i * 100 + j], %{},
                      timeout: 10_000,
                      retry: [max_attempts: 20, base_delay: 10, max_delay: 100]
                    )
                  end
                end,
                timeout: 120_000
              )
              |> Enum.flat_map(fn {:ok, rs} -> rs end)

            assert length(results) == 160

            for r <- results do
              assert match?({:ok, [_]}, r) or match?({:error, _}, r)
            end

            assert Enum.count(results, &match?({:ok, _}, &1)) > 0
          end)

        assert log =~ "protocol error"
        refute log =~ "terminating"
        # No stray replies reached the callers' mailboxes, and the tree is up.
        refute_received {_, _}
        assert Process.alive?(sup)
        stop_supervised!(name)
      end
    end
  end

  describe "replies whose first bytes the direct path does not recognise" do
    # Valid terminal frames that do not start as the worker's encoder writes
    # them (keys in another order, more fields, ATOM_EXT atoms): the worker
    # decodes them itself and the caller gets its answer, without a restart.
    for {c, expected} <- [reordered: "reordered", extra_fields: "extra", atom_ext: "atom_ext"] do
      test "#{c}: the caller gets its reply" do
        name = :"fake_valid_#{unquote(c)}"
        start_fake_sup(name, %{"FUZZ_RATE" => "0"})
        w = GenServer.whereis(name)

        assert {:ok, unquote(expected)} =
                 AxonPort.call(name, "echo", [to_string(unquote(c))], %{}, timeout: 10_000)

        assert {:ok, [1]} = AxonPort.call(name, "echo", [1])
        assert GenServer.whereis(name) == w
        assert Worker.load(w) == 0
      end
    end
  end

  describe "stream receivers" do
    setup do
      w = start_supervised!({Worker, worker_opts()})
      %{w: w}
    end

    test "get exactly one terminal message when the worker is killed", %{w: w} do
      refs =
        for _ <- 1..3 do
          {:ok, {^w, ref}} =
            AxonPort.stream(w, AxonPort.ReliabilitySupport.blocking_spec(self()), "go")

          ref
        end

      for _ <- refs, do: assert_receive({:tool_blocked, _}, 10_000)
      Process.exit(w, :kill)

      for ref <- refs do
        assert_receive {:axon_port, ^ref, {:error, {:worker_down, :killed}}}, 5_000
        refute_receive {:axon_port, ^ref, {:error, _}}, 100
        refute_received {:axon_port, ^ref, {:result, _}}
      end
    end

    test "stream!/4 ends with an error when the worker is killed", %{w: w} do
      me = self()

      task =
        Task.async(fn ->
          w
          |> AxonPort.stream!(AxonPort.ReliabilitySupport.blocking_spec(me), "go",
            idle_timeout: 60_000
          )
          |> Enum.to_list()
        end)

      assert_receive {:tool_blocked, _}, 10_000
      Process.exit(w, :kill)
      assert List.last(Task.await(task, 10_000)) == {:error, {:worker_down, :killed}}
    end
  end

  # A frame that names its request: that caller gets a protocol_error; one
  # without a usable id fails every caller alike.
  defp assert_reason(c, reason) when c in ~w(missing_id not_a_map unknown_atom),
    do: assert({:worker_exit, {:protocol_error, _}} = reason)

  defp assert_reason(_c, reason), do: assert(%Error{kind: "protocol_error"} = reason)
end
