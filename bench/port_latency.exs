# Elixir-driven latency benchmark: Port.open on the raw echo baseline and on the worker.
#
#   elixir bench/port_latency.exs [--n 3000] [--calls 20000] [--python .venv/bin/python]
#                                 [--only-client] [--terms FILE]
#
# For each placement the script pins the BEAM itself (taskset -a -p) and sets
# schedulers_online, and spawns the child through `taskset -c CPU`:
#   same-core : BEAM on cpu 0 (1 scheduler), child on cpu 0
#   cross-core: BEAM on cpu 0 (1 scheduler), child on cpu 1
#   two-cores : BEAM on cpus 0-1 (2 schedulers), child unpinned (64-caller throughput only)
# Processes: raw echo (bench/baselines.py raw) and the worker (ETF, --module
# fixture_functions), each with :nouse_stdio (--fds 3,4) and with stdio. Every figure is
# also printed as a ratio to the raw echo in the same placement and mode. `--terms FILE`
# also writes the figures as an Erlang term (:erlang.term_to_binary) for
# bench/elixir/bench.exs's `calls` section, which puts them in its JSON for the charts.

defmodule Bench do
  @root Path.expand("..", __DIR__)

  def opts do
    {o, _, _} =
      # `mix run bench/port_latency.exs -- --only-client` leaves the "--" in argv.
      OptionParser.parse(Enum.drop_while(System.argv(), &(&1 == "--")),
        strict: [n: :integer, calls: :integer, python: :string, only_client: :boolean,
                 terms: :string]
      )

    %{
      only_client: o[:only_client] || false,
      terms: o[:terms],
      n: o[:n] || 3000,
      calls: o[:calls] || 20000,
      python: Path.expand(o[:python] || Path.join(@root, ".venv/bin/python"))
    }
  end

  # The fixtures' directories, then the caller's PYTHONPATH (e.g. another checkout's src).
  def pythonpath do
    [Path.join(@root, "tests/support"), Path.join(@root, "bench"), System.get_env("PYTHONPATH")]
    |> Enum.reject(&(&1 in [nil, ""]))
    |> Enum.join(":")
  end

  def pin_beam(cpus, schedulers) do
    {_, 0} =
      System.cmd("taskset", ["-a", "-p", "-c", cpus, System.pid()], stderr_to_stdout: true)

    :erlang.system_flag(:schedulers_online, schedulers)
  end

  def spawn(kind, mode, cpu, o) do
    fds = if mode == :nouse_stdio, do: ["--fds", "3,4"], else: []

    cmd =
      case kind do
        :raw -> [Path.join(@root, "bench/baselines.py"), "raw" | fds]
        :worker -> ["-m", "axon_port", "--codec", "etf", "--module", "fixture_functions" | fds]
      end

    {exe, args} =
      if cpu,
        do: {System.find_executable("taskset"), ["-c", cpu, o.python | cmd]},
        else: {o.python, cmd}

    pypath = Bench.pythonpath()
    extra = if mode == :nouse_stdio, do: [:nouse_stdio], else: []

    port =
      Port.open(
        {:spawn_executable, exe},
        [:binary, {:packet, 4}, :exit_status, :hide, {:args, args},
         {:env, [{~c"PYTHONPATH", String.to_charlist(pypath)}]} | extra]
      )

    if kind == :worker do
      receive do
        {^port, {:data, bin}} -> %{type: :ready} = :erlang.binary_to_term(bin)
      after
        30_000 -> raise "no ready frame"
      end

      # Steady state: let the background `import pydantic_ai` finish (it holds the GIL
      # in long stretches; requests served meanwhile wait up to the 5 ms switch interval).
      Process.sleep(1500)
    end

    port
  end

  def close(port) do
    {:os_pid, pid} = Port.info(port, :os_pid)
    Port.close(port)
    System.cmd("kill", ["-9", to_string(pid)], stderr_to_stdout: true)
    :ok
  end

  def req(:ping, id), do: :erlang.term_to_binary(%{op: :ping, id: id})
  def req(:call, id), do: :erlang.term_to_binary(%{op: :call, id: id, function: "add", args: [1, 2]})

  def check(port, kind, op) do
    Port.command(port, req(op, 1))

    receive do
      {^port, {:data, bin}} ->
        t = :erlang.binary_to_term(bin)

        case {kind, op} do
          {:raw, _} -> true = t == :erlang.binary_to_term(req(op, 1))
          {:worker, :ping} -> %{type: :pong, id: 1} = t
          {:worker, :call} -> %{type: :result, id: 1, output: 3} = t
        end
    end
  end

  # Sequential round trips: the request is encoded once, the reply decoded each time.
  def round_trips(port, op, n) do
    bin = req(op, 1)

    for _ <- 1..n do
      t0 = System.monotonic_time(:nanosecond)
      Port.command(port, bin)

      receive do
        {^port, {:data, r}} -> :erlang.binary_to_term(r)
      end

      System.monotonic_time(:nanosecond) - t0
    end
  end

  def pct(sorted, q), do: Enum.at(sorted, min(length(sorted) - 1, trunc(q * length(sorted))))

  # 64 concurrent callers through one router process that owns the port.
  def callers(port, total, ncallers \\ 64) do
    me = self()
    per = div(total, ncallers)
    router = spawn_link(fn -> receive(do: (:go -> route(port, %{}, 0))) end)
    Port.connect(port, router)
    send(router, :go)
    t0 = System.monotonic_time(:nanosecond)

    tasks =
      for _ <- 1..ncallers do
        Task.async(fn ->
          for _ <- 1..per do
            send(router, {:call, self()})

            receive do
              {:reply, 3} -> :ok
              {:reply, other} -> raise "bad reply #{inspect(other)}"
            end
          end
        end)
      end

    Enum.each(tasks, &Task.await(&1, 120_000))
    secs = (System.monotonic_time(:nanosecond) - t0) / 1.0e9
    send(router, {:give_back, me})

    receive do
      :given_back -> :ok
    end

    per * ncallers / secs
  end

  defp route(port, waiting, next) do
    receive do
      {:call, from} ->
        id = next + 1
        Port.command(port, :erlang.term_to_binary(%{op: :call, id: id, function: "add", args: [1, 2]}))
        route(port, Map.put(waiting, id, from), id)

      {^port, {:data, bin}} ->
        t = :erlang.binary_to_term(bin)
        id = t[:id]
        # The worker answers %{type: :result, output: 3}; the raw echo returns the request.
        out = Map.get(t, :output, 3)
        {from, waiting} = Map.pop(waiting, id)
        send(from, {:reply, out})
        route(port, waiting, next)

      {:give_back, owner} ->
        Port.connect(port, owner)
        send(owner, :given_back)
    end
  end

  def us(ns), do: :io_lib.format("~.1f us", [ns / 1000]) |> to_string()
  def f2(x), do: :io_lib.format("~.2f", [x / 1]) |> to_string()

  def table(title, header, rows) do
    cells = [header | rows]
    widths = for i <- 0..(length(header) - 1), do: cells |> Enum.map(&String.length(Enum.at(&1, i))) |> Enum.max()
    IO.puts("\n## #{title}")

    cells
    |> Enum.with_index()
    |> Enum.each(fn {r, j} ->
      IO.puts("| " <> (Enum.zip(r, widths) |> Enum.map(fn {c, w} -> String.pad_trailing(c, w) end) |> Enum.join(" | ")) <> " |")
      if j == 0, do: IO.puts("|" <> (widths |> Enum.map(&String.duplicate("-", &1 + 2)) |> Enum.join("|")) <> "|")
    end)
  end

  def verdict(true), do: "PASS"
  def verdict(false), do: "FAIL"

  def latency(placement, beam_cpus, child_cpu, o) do
    pin_beam(beam_cpus, 1)

    procs =
      for mode <- [:nouse_stdio, :stdio], kind <- [:raw, :worker] do
        port = spawn(kind, mode, child_cpu, o)
        check(port, kind, :ping)
        check(port, kind, :call)
        {{kind, mode}, port}
      end

    # Three rounds, alternating the processes, so drift hits them all alike.
    samples =
      Enum.reduce(1..3, %{}, fn _, acc ->
        Enum.reduce(procs, acc, fn {key, port}, acc ->
          Enum.reduce([:ping, :call], acc, fn op, acc ->
            Map.update(acc, {key, op}, round_trips(port, op, div(o.n, 3)), &(&1 ++ round_trips(port, op, div(o.n, 3))))
          end)
        end)
      end)

    stats =
      Map.new(samples, fn {k, v} ->
        s = Enum.sort(v)
        {k, %{p50: pct(s, 0.5), p99: pct(s, 0.99), mean: Enum.sum(s) / length(s)}}
      end)

    # One row per process, op and mode: printed below and returned for --terms.
    data =
      for mode <- [:nouse_stdio, :stdio], op <- [:ping, :call], kind <- [:raw, :worker] do
        s = stats[{{kind, mode}, op}]

        %{mode: mode, op: op, process: kind, p50_us: s.p50 / 1000, p99_us: s.p99 / 1000,
          x_raw: s.p50 / stats[{{:raw, mode}, op}].p50}
      end

    rows =
      for %{mode: mode, op: op, process: kind, x_raw: ratio} = d <- data do
        target =
          case {kind, op, placement} do
            {:worker, :ping, _} -> "<= 2x raw: #{verdict(ratio <= 2.0)}"
            {:worker, :call, "same-core"} -> "<= 2.1x raw: #{verdict(ratio <= 2.1)}"
            {:worker, :call, "cross-core"} -> "<= 1.4x raw: #{verdict(ratio <= 1.4)}"
            _ -> ""
          end

        [to_string(mode), to_string(op), if(kind == :raw, do: "raw echo", else: "worker etf"),
         us(d.p50_us * 1000), us(d.p99_us * 1000), f2(ratio), target]
      end

    table("#{placement}: sequential round trips, Elixir Port (#{div(o.n, 3) * 3} per row)",
      ["mode", "op", "process", "p50", "p99", "p50 x raw", "target"], rows)

    thr =
      for {{kind, mode}, port} <- procs, mode == :nouse_stdio do
        {kind, callers(port, o.calls)}
      end
      |> Map.new()

    Enum.each(procs, fn {_, p} -> close(p) end)
    raw_seq = 1.0e9 / stats[{{:raw, :nouse_stdio}, :call}].mean
    {thr, raw_seq, data}
  end

  def two_cores(o) do
    pin_beam("0-1", 2)

    thr =
      for kind <- [:raw, :worker], into: %{} do
        port = spawn(kind, :nouse_stdio, nil, o)
        check(port, kind, :call)
        r = callers(port, o.calls)
        close(port)
        {kind, r}
      end

    thr
  end

  # --- Client hop: a bare Port owned by the measuring process vs AxonPort.call to an
  # AxonPort.Worker, the same worker command and frames (call add(1, 2), ETF, fds 3,4),
  # interleaved in 3 rounds; also a bare Port owned by a relay process (one process hop,
  # nothing else) and the GenServer path. Needs the compiled client (mix_fixture/_build/*/ebin).
  def client_available? do
    ebin =
      Path.join(@root, "mix_fixture/_build/*/lib/axon_port/ebin/Elixir.AxonPort.Worker.Direct.beam")
      |> Path.wildcard()
      |> Enum.sort_by(&File.stat!(&1, time: :posix).mtime, :desc)
      |> Enum.map(&Path.dirname/1)

    case ebin do
      [dir | _] ->
        Code.prepend_path(dir)
        {:ok, _} = Application.ensure_all_started(:axon_port)
        true

      [] ->
        false
    end
  end

  def launcher(cpu, o) do
    path = Path.join(System.tmp_dir!(), "axon_bench_launcher_#{cpu}")
    File.write!(path, "#!/bin/sh\nexec taskset -c #{cpu} '#{o.python}' -m axon_port \"$@\"\n")
    File.chmod!(path, 0o755)
    path
  end

  def axon_round_trips(w, n) do
    for _ <- 1..n do
      t0 = System.monotonic_time(:nanosecond)
      {:ok, 3} = AxonPort.call(w, "add", [1, 2])
      System.monotonic_time(:nanosecond) - t0
    end
  end

  # The same call through the worker GenServer (GenServer.call, reply routed by the server):
  # what AxonPort.call did before the direct path, measured alongside for comparison.
  def server_round_trips(w, n) do
    payload = %{op: :call, function: "add", args: [1, 2], kwargs: %{}}

    for _ <- 1..n do
      t0 = System.monotonic_time(:nanosecond)
      {:ok, 3} = AxonPort.Worker.request(w, payload, [op: :call_via_server], 5_000)
      System.monotonic_time(:nanosecond) - t0
    end
  end

  # The floor of any design where a process other than the caller owns the port: a bare
  # Port owned by a minimal relay process, which forwards each reply to the caller; the
  # caller writes its (same) frame itself, as the direct path does.
  def relayed(port) do
    me = self()

    relay =
      spawn_link(fn ->
        receive(do: (:go -> :ok))
        relay_loop(port, me)
      end)

    Port.connect(port, relay)
    send(relay, :go)
    {port, relay}
  end

  defp relay_loop(port, to) do
    receive do
      {^port, {:data, bin}} ->
        send(to, {:relayed, bin})
        relay_loop(port, to)

      {:give_back, owner} ->
        Port.connect(port, owner)
        send(owner, :given_back)
    end
  end

  def relay_round_trips({port, _relay}, n) do
    bin = req(:call, 1)

    for _ <- 1..n do
      t0 = System.monotonic_time(:nanosecond)
      Port.command(port, bin)

      receive do
        {:relayed, r} -> :erlang.binary_to_term(r)
      end

      System.monotonic_time(:nanosecond) - t0
    end
  end

  def client_hop(placement, beam_cpus, child_cpu, o) do
    pin_beam(beam_cpus, 1)
    bare = spawn(:worker, :nouse_stdio, child_cpu, o)
    check(bare, :worker, :call)
    relay_port = spawn(:worker, :nouse_stdio, child_cpu, o)
    check(relay_port, :worker, :call)
    relay = relayed(relay_port)
    pypath = Bench.pythonpath()

    {:ok, w} =
      apply(AxonPort.Worker, :start_link, [
        [launcher: launcher(child_cpu, o), modules: ["fixture_functions"], env: %{"PYTHONPATH" => pypath}]
      ])

    Process.sleep(1500)
    {:ok, 3} = AxonPort.call(w, "add", [1, 2])
    per = div(o.n, 3)

    {b, r, a, g} =
      Enum.reduce(1..3, {[], [], [], []}, fn _, {b, r, a, g} ->
        {b ++ round_trips(bare, :call, per), r ++ relay_round_trips(relay, per),
         a ++ axon_round_trips(w, per), g ++ server_round_trips(w, per)}
      end)

    close(bare)
    send(elem(relay, 1), {:give_back, self()})
    receive(do: (:given_back -> :ok))
    close(relay_port)
    GenServer.stop(w)
    [b, r, a, g] = Enum.map([b, r, a, g], &Enum.sort/1)
    {bp50, bp99, ap50, ap99} = {pct(b, 0.5), pct(b, 0.99), pct(a, 0.5), pct(a, 0.99)}
    {rp50, rp99, gp50, gp99} = {pct(r, 0.5), pct(r, 0.99), pct(g, 0.5), pct(g, 0.99)}

    table("#{placement}: AxonPort.call vs a bare Port, call add(1, 2) (#{per * 3} each, interleaved)",
      ["path", "p50", "p99", "p50 x bare", "target"],
      [
        ["bare Port (caller owns the port)", us(bp50), us(bp99), "1.00", ""],
        ["bare Port owned by a relay process (the hop's floor)", us(rp50), us(rp99), f2(rp50 / bp50), ""],
        ["AxonPort.call (direct path)", us(ap50), us(ap99), f2(ap50 / bp50),
         "p50 <= 1.15x bare: #{verdict(ap50 / bp50 <= 1.15)}"],
        ["through the GenServer (GenServer.call)", us(gp50), us(gp99), f2(gp50 / bp50), ""]
      ])

    rows =
      for {name, p50, p99} <- [
            {"bare Port", bp50, bp99},
            {"relay floor", rp50, rp99},
            {"AxonPort.call", ap50, ap99},
            {"GenServer path", gp50, gp99}
          ],
          do: %{name: name, p50_us: p50 / 1000, p99_us: p99 / 1000, x_bare: p50 / bp50}

    %{placement: placement, calls: per * 3, rows: rows}
  end

  def main do
    o = opts()
    IO.puts("# port_latency: OTP #{System.otp_release()}, Elixir #{System.version()}, #{:erlang.system_info(:logical_processors)} cpus")

    hops =
      if client_available?() do
        [client_hop("same-core", "0", "0", o), client_hop("cross-core", "0", "1", o)]
      else
        IO.puts("(compiled client not found: skipping AxonPort.call vs bare Port)")
        []
      end

    ports = if o.only_client, do: %{}, else: main_ports(o)
    if o.terms, do: File.write!(o.terms, :erlang.term_to_binary(Map.put(ports, :client_hop, hops)))
  end

  def main_ports(o) do
    {same, same_seq, same_rows} = latency("same-core", "0", "0", o)
    {cross, cross_seq, cross_rows} = latency("cross-core", "0", "1", o)
    two = two_cores(o)

    # ErlPort reference (TARGETS.md): 38k calls/s on one core, 73k across two, when the
    # raw echo did 82k/s same-core and 18.7k/s cross-core sequentially; scale by ours.
    same_t = 38_000 * same_seq / 82_000
    cross_t = 73_000 * cross_seq / 18_700

    row = fn name, thr, target ->
      [name, "#{round(thr.raw)}/s", "#{round(thr.worker)}/s", f2(thr.worker / thr.raw), target]
    end

    table("64 concurrent Elixir callers of call add(1, 2), :nouse_stdio, one router process (#{o.calls} calls)",
      ["placement", "raw echo", "worker etf", "worker x raw", "target (ErlPort, scaled)"],
      [
        row.("same-core", same, "> #{round(same_t)}/s (38k x #{round(same_seq)}/82k): #{verdict(same.worker > same_t)}"),
        row.("cross-core", cross, "> #{round(cross_t)}/s (73k x #{round(cross_seq)}/18.7k): #{verdict(cross.worker > cross_t)}"),
        row.("two-cores, unpinned child", two, "")
      ])

    callers =
      for {placement, thr} <- [{"same-core", same}, {"cross-core", cross}, {"two-cores", two}],
          do: %{placement: placement, raw: thr.raw, worker: thr.worker}

    %{
      round_trips: [
        %{placement: "same-core", rows: same_rows},
        %{placement: "cross-core", rows: cross_rows}
      ],
      callers: callers
    }
  end
end

Bench.main()
