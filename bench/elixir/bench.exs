# Elixir-driven benchmark: agent runs through AxonPort.Worker / AxonPort.Pool, as a
# user drives them, against the same runs in-process (bench/inproc.py), interleaved
# round by round in one run. Prints medians [min-max] and ratios; writes JSON for
# bench/charts.py. Run through bench/run_elixir.sh (it sets the paths).
#
#   mix run ../bench/elixir/bench.exs -- [--quick] [--rounds R] [--only seq,concurrent,...]
#                                         [--out FILE]
#
# Sections: seq, concurrent, history, streams, pool, calls. `calls` runs
# bench/port_latency.exs in a BEAM of its own (it pins itself per placement): Port round
# trips to the worker vs the raw echo, AxonPort.call vs a bare Port, 64 callers.
#
# Placement: the BEAM is pinned to cpu 0 (taskset -a -p), workers and in-process
# baselines to cpu 1 (a `taskset -c 1` launcher wrapper; taskset execs, so the
# port's OS pid is still the worker's) for seq/concurrent/history/streams. The pool
# section is unpinned (all cores) and measures N busy processes in the same round.
defmodule Bench do
  @root Path.expand("../..", __DIR__)
  @bench Path.join(@root, "bench")
  @py Path.join(@root, ".venv/bin/python")

  def main(argv) do
    {opts, _, _} =
      OptionParser.parse(argv,
        strict: [quick: :boolean, rounds: :integer, only: :string, out: :string]
      )

    quick = Keyword.get(opts, :quick, false)
    rounds = Keyword.get(opts, :rounds, if(quick, do: 1, else: 3))
    cores = System.schedulers_online() |> max(:erlang.system_info(:logical_processors))

    only =
      case opts[:only] do
        nil -> ~w(seq concurrent history streams pool calls)
        s -> String.split(s, ",")
      end

    out = Keyword.get(opts, :out, Path.join(@bench, "results/elixir.json"))

    sizes =
      if quick,
        do: %{seq: 50, conc: 100, hist_runs: 5, pool: 200},
        else: %{seq: 500, conc: 1000, hist_runs: 30, pool: 2000}

    pin_beam(cores)

    IO.puts(
      "axon_port Elixir bench: #{rounds} round(s)#{if quick, do: " (quick)", else: ""}, #{cores} cores, loadavg #{loadavg()}"
    )

    results =
      for section <- only, into: %{} do
        r =
          case section do
            "seq" ->
              seq(rounds, sizes.seq)

            "concurrent" ->
              concurrent(rounds, sizes.conc)

            "history" ->
              history(rounds, sizes.hist_runs, if(quick, do: [0, 100], else: [0, 10, 100, 1000]))

            "streams" ->
              streams(rounds, if(quick, do: [10], else: [10, 100, 500]))

            "pool" ->
              pool(rounds, sizes.pool, cores)

            "calls" ->
              calls(quick)
          end

        {section, r}
      end

    meta = %{
      date: DateTime.utc_now() |> DateTime.to_iso8601(),
      quick: quick,
      rounds: rounds,
      cores: cores,
      loadavg: loadavg()
    }

    File.mkdir_p!(Path.dirname(out))
    File.write!(out, json(%{meta: meta, results: results}))
    IO.puts("\nwrote #{out}")
  end

  # -- placement -----------------------------------------------------------------

  defp pin_beam(cores) do
    if cores > 1 and System.find_executable("taskset") do
      System.cmd("taskset", ["-a", "-p", "-c", "0", System.pid()], stderr_to_stdout: true)
    end
  end

  defp launcher(cpu) do
    path = Path.join(System.tmp_dir!(), "axon_port_bench_launcher_#{cpu || "any"}.sh")
    real = Path.join(@root, "priv/axon_port")
    body = if cpu, do: "exec taskset -c #{cpu} #{real} \"$@\"\n", else: "exec #{real} \"$@\"\n"
    File.write!(path, "#!/bin/sh\n" <> body)
    File.chmod!(path, 0o755)
    path
  end

  # BENCH_WORKER_ARGS: extra worker command-line arguments for every worker of the run
  # (e.g. "--idle-spin-us 0"), to compare a setting across whole sections.
  defp worker_opts(cpu) do
    [
      modules: ["bench_models"],
      env: %{"PYTHONPATH" => @bench},
      launcher: launcher(cpu),
      args: String.split(System.get_env("BENCH_WORKER_ARGS", ""))
    ]
  end

  # -- baselines ---------------------------------------------------------------------

  defp inproc(mode, args, cpu \\ 1) do
    argv = [@py, Path.join(@bench, "inproc.py"), mode | args]
    {cmd, argv} = if cpu, do: {"taskset", ["-c", "#{cpu}" | argv]}, else: {hd(argv), tl(argv)}
    {out, 0} = System.cmd(cmd, argv, env: [{"PYTHONPATH", @bench}], cd: @bench)
    out |> String.split("\n", trim: true) |> List.last() |> decode_json()
  end

  # -- sections ------------------------------------------------------------------------

  # Every row is a long-lived process, warmed with 50 runs, measured in short batches
  # interleaved round by round (5 per requested round), so a drift of the machine
  # within the section reaches every row alike.
  def seq(rounds, n) do
    batches = rounds * 5
    per = max(div(n, 5), 10)

    header(
      "sequential 'cpu' runs (FunctionModel answers at once): #{batches} interleaved " <>
        "batches of #{per} runs, long-lived processes; per-run time"
    )

    default = serve_inproc(1, [])
    tuned = serve_inproc(1, ["--tuned"])
    {:ok, w} = AxonPort.Worker.start_link(worker_opts(1))
    {:ok, w0} = AxonPort.Worker.start_link(worker_opts(1) ++ [idle_spin_us: 0])
    {pool, sup} = start_pool(1, 1)
    bare = open_bare(1)

    try do
      for target <- [w, w0, pool], _ <- 1..50, do: run!(target, "cpu")
      bare_batch(bare, 50)

      rows =
        measure(batches, [
          {"in-process default", fn -> inproc_batch(default, per) end},
          {"in-process tuned", fn -> inproc_batch(tuned, per) end},
          {"AxonPort.Worker", fn -> timed_seq(w, per) end},
          {"AxonPort.Worker, --idle-spin-us 0", fn -> timed_seq(w0, per) end},
          {"AxonPort.Pool (1 worker)", fn -> timed_seq(pool, per) end},
          {"bare Port (no client)", fn -> bare_batch(bare, per) end},
          # From the bare Port batch just before, in the same round: the BEAM's time
          # from a result's arrival to the next request's port_command (decoding the
          # result, encoding the next request), the median over the batch.
          {"  of which BEAM turn-around", fn -> Process.delete(:bench_turnaround) end}
        ])

      report(rows, "in-process tuned", :time, "<= 1.05x tuned")
      rows
    after
      Enum.each([default, tuned, elem(bare, 0)], &Port.close/1)
      Enum.each([w, w0], &GenServer.stop/1)
      stop_pool(sup)
    end
  end

  # bench/inproc.py serve: a long-lived in-process baseline on `cpu`, warmed with 50
  # runs, answering "seq K" lines with one JSON line each.
  defp serve_inproc(cpu, args) do
    argv = ["-c", "#{cpu}", @py, Path.join(@bench, "inproc.py"), "serve", "--n", "50" | args]

    port =
      Port.open({:spawn_executable, System.find_executable("taskset")}, [
        :binary,
        :exit_status,
        {:line, 65_536},
        args: argv,
        cd: @bench,
        env: [{~c"PYTHONPATH", String.to_charlist(@bench)}]
      ])

    receive do
      {^port, {:data, {:eol, ~s({"ready": true})}}} -> port
    after
      60_000 -> raise "inproc.py serve never got ready"
    end
  end

  defp inproc_batch(port, k, history \\ 0) do
    Port.command(port, if(history > 0, do: "seq #{k} #{history}\n", else: "seq #{k}\n"))

    receive do
      {^port, {:data, {:eol, line}}} -> decode_json(line)["secs"] / k
      {^port, {:exit_status, status}} -> raise "inproc.py serve exited with #{status}"
    after
      120_000 -> raise "inproc.py serve: no answer"
    end
  end

  defp timed_seq(target, n) do
    run!(target, "cpu")
    t0 = now()
    for _ <- 1..n, do: run!(target, "cpu")
    (now() - t0) / n
  end

  # The floor of any Elixir client: the measuring process owns a Port to the same
  # worker and sends the frame `AxonPort.run/4` sends, then waits for and decodes its
  # `result` frame (AxonPort.Protocol.decode, as the worker does). No GenServer, no
  # ETS, no monitor, no telemetry: what is left of the gap to in-process is the
  # worker's and the pipe's. {port, payload, next-id counter}.
  defp open_bare(cpu) do
    {:ok, port} = AxonPort.Worker.Launch.open(launcher(cpu), worker_opts(cpu))
    {payload, _meta} = AxonPort.Requests.run("cpu", "hi", [], false)

    receive do
      {^port, {:data, _ready}} -> :ok
    after
      30_000 -> raise "bare worker never sent ready"
    end

    {port, payload, :counters.new(1, [])}
  end

  # Per-run time of `k` runs; the batch's median turn-around goes to the process
  # dictionary for the row after it.
  defp bare_batch({port, payload, ids}, k) do
    first = :counters.get(ids, 1) + 1
    :counters.add(ids, 1, k)
    t0 = System.monotonic_time()

    {t1, gaps} =
      Enum.reduce(first..(first + k - 1), {t0, []}, fn id, {arrived, gaps} ->
        {sent, got} = bare_run(port, payload, id)
        {got, [sent - arrived | gaps]}
      end)

    # The first gap is the loop's start, not a turn-around.
    Process.put(:bench_turnaround, gaps |> Enum.drop(-1) |> Enum.sort() |> median() |> secs())
    secs(t1 - t0) / k
  end

  # {when the request was handed to the port, when its result arrived} (native units).
  defp bare_run(port, payload, id) do
    frame = AxonPort.Worker.encode(Map.put(payload, :id, id))
    sent = System.monotonic_time()
    true = Port.command(port, frame)

    receive do
      {^port, {:data, bin}} ->
        got = System.monotonic_time()
        {:ok, %{type: :result, id: ^id, output: "done"}} = AxonPort.Protocol.decode(bin)
        {sent, got}
    after
      30_000 -> raise "bare worker: no result for run #{id}"
    end
  end

  defp secs(native), do: native / System.convert_time_unit(1, :second, :native)

  def concurrent(rounds, n) do
    header("#{n} concurrent 'sleepy' runs (100 ms model latency); wall time")

    rows =
      measure(rounds, [
        {"in-process default", fn -> inproc("concurrent", ["--n", "#{n}"])["secs"] end},
        {"in-process tuned", fn -> inproc("concurrent", ["--n", "#{n}", "--tuned"])["secs"] end},
        {"AxonPort.Worker", fn -> with_worker(1, fn w -> timed_conc(w, n) end) end},
        {"AxonPort.Pool (1 worker)", fn -> with_pool(1, 1, fn p -> timed_conc(p, n) end) end}
      ])

    report(rows, "in-process tuned", :time, "<= 1.05x tuned, <= 0.6x default")
    rows
  end

  defp timed_conc(target, n) do
    run!(target, "sleepy")
    t0 = now()

    1..n
    |> Enum.map(fn _ -> Task.async(fn -> run!(target, "sleepy") end) end)
    |> Task.await_many(60_000)

    now() - t0
  end

  # As seq: long-lived processes (one in-process baseline for every L, three workers
  # per L so the miss row's entries never evict the hit rows'), warmed, then measured
  # in short batches interleaved round by round (3 per requested round).
  def history(rounds, n, lengths) do
    batches = rounds * 3
    per = max(div(n, 3), 5)

    header(
      "sequential 'cpu' runs with L history messages: #{batches} interleaved batches of " <>
        "#{per} runs, long-lived processes; per-run time"
    )

    base =
      with_worker(1, fn w ->
        {:ok, r} = AxonPort.run(w, "cpu", "hi", retry: false)
        r.messages
      end)

    tuned = serve_inproc(1, ["--tuned"])

    try do
      Enum.flat_map(lengths, fn l -> history_rows(l, base, tuned, batches, per) end)
    after
      Port.close(tuned)
    end
  end

  defp history_rows(l, base, tuned, batches, per) do
    hit = salted(base, l, "hit")
    encoded = AxonPort.History.new(hit)

    [w_hit, w_encoded, w_miss] =
      for _ <- 1..3, do: elem(AxonPort.Worker.start_link(worker_opts(1)), 1)

    salts = :counters.new(1, [])

    miss_batch = fn ->
      hs =
        for _ <- 1..per do
          :counters.add(salts, 1, 1)
          salted(base, l, "miss#{:counters.get(salts, 1)}")
        end

      timed(per, fn i -> run!(w_miss, "cpu", history: Enum.at(hs, i - 1)) end) / per
    end

    try do
      for _ <- 1..2,
          do: {run!(w_hit, "cpu", history: hit), run!(w_encoded, "cpu", history: encoded)}

      run!(w_miss, "cpu", history: salted(base, l, "warm"))
      inproc_batch(tuned, 1, l)

      rs =
        measure(batches, [
          {"L=#{l} in-process tuned", fn -> inproc_batch(tuned, per, l) end},
          {"L=#{l} worker, cache hit",
           fn -> timed(per, fn _ -> run!(w_hit, "cpu", history: hit) end) / per end},
          {"L=#{l} worker, cache hit, AxonPort.History",
           fn -> timed(per, fn _ -> run!(w_encoded, "cpu", history: encoded) end) / per end},
          {"L=#{l} worker, cache miss", miss_batch}
        ])

      report(rs, "L=#{l} in-process tuned", :time, if(l == 1000, do: "<= 1.15x", else: ""))
      rs
    after
      Enum.each([w_hit, w_encoded, w_miss], &GenServer.stop/1)
    end
  end

  defp timed(n, fun) do
    t0 = now()
    for i <- 1..n, do: fun.(i)
    now() - t0
  end

  def salted(base, l, salt) do
    for i <- 0..(l - 1)//1 do
      msg = Enum.at(base, rem(i, 2))

      Map.update!(msg, "parts", fn parts ->
        Enum.map(parts, fn
          %{"content" => c} = p when is_binary(c) -> %{p | "content" => "#{c} #{salt} #{i}"}
          p -> p
        end)
      end)
    end
  end

  def streams(rounds, ns) do
    header("N concurrent 'streamer' runs (100 text deltas each); deltas/s")

    Enum.flat_map(ns, fn n ->
      rs =
        measure(rounds, [
          {"N=#{n} in-process tuned",
           fn ->
             r = inproc("stream", ["--n", "#{n}", "--tuned"])
             r["deltas"] / r["secs"]
           end},
          {"N=#{n} in-process default",
           fn ->
             r = inproc("stream", ["--n", "#{n}"])
             r["deltas"] / r["secs"]
           end},
          {"N=#{n} AxonPort.Worker", fn -> with_worker(1, fn w -> timed_streams(w, n) end) end}
        ])

      report(rs, "N=#{n} in-process tuned", :rate, if(n == 500, do: ">= 1.0x tuned", else: ""))
      rs
    end)
  end

  defp timed_streams(w, n) do
    stream_one(w)
    t0 = now()

    deltas =
      1..n
      |> Enum.map(fn _ -> Task.async(fn -> stream_one(w) end) end)
      |> Task.await_many(120_000)
      |> Enum.sum()

    deltas / (now() - t0)
  end

  defp stream_one(w) do
    {:ok, {_, ref}} = AxonPort.stream(w, "streamer", "hi")
    count_deltas(ref, 0)
  end

  defp count_deltas(ref, k) do
    receive do
      {:axon_port, ^ref, {:chunk, "text_delta", _}} -> count_deltas(ref, k + 1)
      {:axon_port, ^ref, {:chunk, _, _}} -> count_deltas(ref, k)
      {:axon_port, ^ref, {:result, _}} -> k
      {:axon_port, ^ref, {:error, e}} -> raise "stream failed: #{inspect(e)}"
    after
      60_000 -> raise "stream stalled"
    end
  end

  def pool(rounds, n, cores) do
    header(
      "pool scaling: #{n} 'cpu' runs, 64 in flight, unpinned; runs/s vs the N-busy-processes ceiling"
    )

    System.cmd("taskset", ["-a", "-p", "-c", "0-#{cores - 1}", System.pid()],
      stderr_to_stdout: true
    )

    rows =
      measure(rounds, [
        {"spin: 1 process", fn -> spin(1) end}
        | for(
            k <- 1..cores,
            do: {"pool of #{k}", fn -> with_pool(k, nil, fn p -> pool_rate(p, n) end) end}
          ) ++
            for(k <- 2..cores//1, do: {"spin: #{k} processes", fn -> spin(k) end})
      ])

    med = Map.new(rows, &{&1.name, &1.median})
    IO.puts("")

    for k <- 1..cores do
      ratio = med["pool of #{k}"] / med["pool of 1"]

      ceiling =
        med["spin: #{k} process" <> if(k == 1, do: "", else: "es")] / med["spin: 1 process"]

      IO.puts(
        "  pool of #{k}: #{f2(med["pool of #{k}"])} runs/s = #{f2(ratio)}x one worker; ceiling #{f2(ceiling)}x; #{pct(ratio / ceiling)} of ceiling (target >= 95%)"
      )
    end

    pin_beam(cores)
    rows
  end

  # N busy processes doing the same fixed work each: aggregate work/s (units of 1 process).
  defp spin(k) do
    code = "n=0\nfor i in range(6_000_000): n += i"
    t0 = now()

    1..k
    |> Enum.map(fn _ -> Task.async(fn -> System.cmd(@py, ["-c", code]) end) end)
    |> Task.await_many(120_000)

    k / (now() - t0)
  end

  defp pool_rate(p, n) do
    run!(p, "cpu")
    t0 = now()

    Task.async_stream(1..n, fn _ -> run!(p, "cpu") end, max_concurrency: 64, timeout: 60_000)
    |> Stream.run()

    n / (now() - t0)
  end

  # bench/port_latency.exs, in a BEAM of its own, its tables streamed to our stdout and
  # its figures read back from the term file it writes.
  def calls(quick) do
    header("calls: Port round trips vs raw echo, AxonPort.call vs a bare Port (port_latency.exs)")
    terms = Path.join(System.tmp_dir!(), "axon_port_bench_calls_#{System.os_time()}.bin")
    sizes = if quick, do: ["--n", "300", "--calls", "2000"], else: []

    {_, 0} =
      System.cmd(
        "mix",
        ["run", "--no-compile", Path.join(@bench, "port_latency.exs"), "--", "--terms", terms] ++
          sizes,
        into: IO.stream(:stdio, :line),
        stderr_to_stdout: true,
        env: [{"MIX_ENV", Atom.to_string(Mix.env())}]
      )

    data = terms |> File.read!() |> :erlang.binary_to_term()
    File.rm(terms)
    data
  end

  # -- helpers --------------------------------------------------------------------

  defp run!(target, agent, opts \\ []) do
    {:ok, %{output: "done"}} = AxonPort.run(target, agent, "hi", [retry: false] ++ opts)
  end

  defp with_worker(cpu, fun) do
    {:ok, w} = AxonPort.Worker.start_link(worker_opts(cpu))

    try do
      fun.(w)
    after
      GenServer.stop(w)
    end
  end

  defp with_pool(size, cpu, fun) do
    {pool, sup} = start_pool(size, cpu)

    try do
      fun.(pool)
    after
      stop_pool(sup)
    end
  end

  defp start_pool(size, cpu) do
    name = :"bench_pool_#{System.unique_integer([:positive])}"
    {:ok, sup} = AxonPort.Pool.start_link(name: name, size: size, worker: worker_opts(cpu))
    wait_members(name, size, 200)
    {{:pool, name}, sup}
  end

  defp stop_pool(sup) do
    Process.unlink(sup)
    Supervisor.stop(sup)
  end

  defp wait_members(name, size, 0), do: raise("pool #{inspect(name)} never had #{size} members")

  defp wait_members(name, size, k) do
    if length(AxonPort.Pool.members(name)) >= size,
      do: :ok,
      else:
        (
          Process.sleep(50)
          wait_members(name, size, k - 1)
        )
  end

  # Runs each {name, fun} once per round, interleaved; returns median/min/max per name.
  defp measure(rounds, cases) do
    samples =
      Enum.reduce(1..rounds, %{}, fn _, acc ->
        Enum.reduce(cases, acc, fn {name, fun}, acc ->
          # one sample per case and round (Map.update/4's default would be a second run)
          sample = fun.()
          Map.update(acc, name, [sample], &[sample | &1])
        end)
      end)

    for {name, _} <- cases do
      xs = Enum.sort(samples[name])
      %{name: name, median: median(xs), min: hd(xs), max: List.last(xs), samples: xs}
    end
  end

  defp report(rows, baseline, kind, target) do
    base = Enum.find(rows, &(&1.name == baseline)).median

    for r <- rows do
      ratio = if kind == :time, do: r.median / base, else: r.median / base

      shown =
        if kind == :time,
          do: "#{ms(r.median)} [#{ms(r.min)}-#{ms(r.max)}]",
          else: "#{f0(r.median)}/s [#{f0(r.min)}-#{f0(r.max)}]"

      IO.puts(
        "  #{String.pad_trailing(r.name, 34)} #{String.pad_trailing(shown, 34)} #{f2(ratio)}x #{baseline}"
      )
    end

    if target != "", do: IO.puts("  target: #{target}")
  end

  defp header(text), do: IO.puts("\n== " <> text)
  defp now, do: System.monotonic_time(:microsecond) / 1.0e6
  defp median(xs), do: (Enum.at(xs, div(length(xs) - 1, 2)) + Enum.at(xs, div(length(xs), 2))) / 2
  defp ms(s) when s < 0.01, do: "#{:erlang.float_to_binary(s * 1000, decimals: 3)} ms"
  defp ms(s), do: "#{:erlang.float_to_binary(s * 1000, decimals: 1)} ms"
  defp f0(x), do: :erlang.float_to_binary(x / 1, decimals: 0)
  defp f2(x), do: :erlang.float_to_binary(x / 1, decimals: 2)
  defp pct(x), do: "#{round(x * 100)}%"
  defp loadavg, do: File.read!("/proc/loadavg") |> String.split() |> hd()

  # Minimal JSON (numbers, strings, lists, maps, booleans) — no deps in the fixture.
  def json(m) when is_map(m),
    do: "{" <> Enum.map_join(m, ",", fn {k, v} -> json(to_string(k)) <> ":" <> json(v) end) <> "}"

  def json(l) when is_list(l), do: "[" <> Enum.map_join(l, ",", &json/1) <> "]"
  def json(b) when is_boolean(b), do: to_string(b)
  def json(nil), do: "null"
  def json(a) when is_atom(a), do: json(Atom.to_string(a))
  def json(s) when is_binary(s), do: inspect(s)
  def json(n) when is_number(n), do: to_string(n)

  def decode_json(s) do
    # inproc.py prints a flat object of numbers.
    s
    |> String.trim()
    |> String.trim_leading("{")
    |> String.trim_trailing("}")
    |> String.split(",")
    |> Map.new(fn kv ->
      [k, v] = String.split(kv, ":", parts: 2)
      {k |> String.trim() |> String.trim("\""), v |> String.trim() |> parse_num()}
    end)
  end

  defp parse_num(v),
    do:
      (case Float.parse(v) do
         {f, _} -> f
       end)
end

Bench.main(Enum.reject(System.argv(), &(&1 == "--")))
