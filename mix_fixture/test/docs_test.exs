defmodule MyApp.Bank do
  @moduledoc false
  # The bank that docs/elixir.md's MyApp.Cards (its "Tools implemented in Elixir"
  # block) calls: customer 123 has a card, everyone else has none.
  use Agent

  def start_link(_ \\ []), do: Agent.start_link(fn -> [] end, name: __MODULE__)

  def block_card(123 = id, reason), do: Agent.update(__MODULE__, &[{id, reason} | &1])
  def block_card(_id, _reason), do: {:error, :not_found}

  @doc "The cards blocked so far, oldest first."
  def blocked, do: __MODULE__ |> Agent.get(& &1) |> Enum.reverse()
end

defmodule AxonPort.DocsTest do
  # The Elixir examples of docs/elixir.md. Every ```elixir block parses, and every
  # block is executed, except those in @parse_only (with the reason):
  #
  # * the Installation blocks (deps lines, `config :axon_port`): the deps
  #   functions are evaluated and the config is read with Config.Reader and
  #   validated by AxonPort.Python.config/0, so a documented option that does not
  #   exist fails here;
  # * the API blocks (@executed): run in doc order against the documentation's
  #   own supervision tree (MyApp.Application: the worker MyApp.AI and the pool
  #   :ai_pool), with the Python module `my_app_tools`
  #   (test/support/py/my_app_tools.py) and `"openai-chat:gpt-4o"` served by a
  #   loopback OpenAI Chat Completions server (tests/support/openai_loopback_port.py,
  #   (AxonPort.Loopback) reached through OPENAI_BASE_URL by pydantic-ai's own OpenAI provider). Each
  #   top-level expression is evaluated in turn (binding and requires carried), so
  #   a `{:ok, ...} = ...` that does not match fails the test; the test then checks
  #   the values against what the model and the tools really saw.
  #
  # The `defmodule`s of the executed blocks are compiled first, as in an app
  # (MyApp.Application names MyApp.Support, defined in a later section). The only
  # change made to a block before it runs is @substitutions.
  use ExUnit.Case, async: false

  import AxonPort.TestHelpers
  import AxonPort.Loopback, only: [script: 2, served: 2, sent?: 2, say: 1, calls: 1, answer: 1]
  import ExUnit.CaptureIO, only: [with_io: 1]

  alias AxonPort.{DocBlocks, Loopback}

  @doc_path Path.expand("../../docs/elixir.md", __DIR__)
  @py_dir Path.expand("support/py", __DIR__)

  # Blocks that are parsed but deliberately not executed: {section, index} => why.
  @parse_only %{
    {"The launcher", 0} =>
      "AxonPort.Worker's own Port.open of the launcher, shown for illustration " <>
        "(`...` stands for the rest of its arguments); every worker started here runs it"
  }

  # Executed against the real worker: section => number of blocks.
  @executed [
    {"Supervision tree", 1},
    {"Calling the worker", 1},
    {"Agents, runs and conversation history", 2},
    {"Streaming", 2},
    {"Direct model requests: `complete`", 1},
    {"Tools implemented in Elixir", 1},
    {"Workflows: `use AxonPort.Workflow`", 2},
    {"Sessions", 1},
    {"Pools and multiple nodes", 1},
    {"Logs and telemetry", 2}
  ]

  # A deployment path of the docs → where this test keeps `my_app_tools`.
  @substitutions [{"/srv/my_app/py", @py_dir}]

  defp blocks, do: DocBlocks.blocks(@doc_path)

  # [{section, index}] of every block, in doc order.
  defp block_keys, do: DocBlocks.keys(blocks())

  defp installation?({section, code, _}),
    do: section == "Installation" and (code =~ "defp deps" or code =~ "config :axon_port")

  test "every elixir block of docs/elixir.md parses" do
    fences = DocBlocks.fences(@doc_path)
    assert length(blocks()) == fences and fences > 10

    for {section, code, line} <- blocks() do
      case Code.string_to_quoted(code, file: @doc_path, line: line) do
        {:ok, _} ->
          :ok

        {:error, err} ->
          flunk("docs/elixir.md (#{section}): block does not parse: #{inspect(err)}\n#{code}")
      end
    end
  end

  test "every elixir block is executed, or listed as parse-only with a reason" do
    installation =
      for {{"Installation", _, _} = b, i} <- Enum.with_index(blocks()) do
        assert installation?(b), "an Installation block that is neither deps nor config"
        i
      end

    keys = block_keys()
    installation_keys = for {"Installation", _} = k <- keys, do: k
    assert length(installation_keys) == length(installation)

    executed = for {section, n} <- @executed, i <- 0..(n - 1), do: {section, i}
    covered = installation_keys ++ Map.keys(@parse_only) ++ executed

    assert Enum.sort(keys -- covered) == [],
           "blocks of docs/elixir.md neither executed nor in @parse_only: " <>
             inspect(Enum.sort(keys -- covered))

    assert Enum.sort(covered -- keys) == [],
           "@executed / @parse_only name blocks docs/elixir.md does not have: " <>
             inspect(Enum.sort(covered -- keys))

    for {from, _} <- @substitutions do
      assert Enum.any?(blocks(), fn {_, code, _} -> code =~ from end),
             "stale substitution #{from}"
    end
  end

  test "the Installation deps lines are valid dependency specs of :axon_port" do
    deps_blocks = for {"Installation", code, _} <- blocks(), code =~ "defp deps", do: code
    assert length(deps_blocks) >= 2

    for {code, i} <- Enum.with_index(deps_blocks) do
      mod = Module.concat(AxonPort.DocsTest, "Deps#{i}")
      Code.eval_string("defmodule #{inspect(mod)} do\n def deps_(), do: deps()\n#{code}\nend")
      assert [{:axon_port, opts}] = mod.deps_()
      assert opts[:path] || (opts[:git] && opts[:sparse] == "mix_fixture")
    end
  end

  test "the documented `config :axon_port` blocks are real, valid options" do
    config_blocks = for {_, code, _} <- blocks(), code =~ "config :axon_port", do: code
    assert length(config_blocks) >= 2
    saved = Application.get_all_env(:axon_port)

    try do
      for code <- config_blocks do
        path =
          Path.join(System.tmp_dir!(), "axon_port_doc_#{System.unique_integer([:positive])}.exs")

        File.write!(path, if(code =~ "import Config", do: code, else: "import Config\n" <> code))

        try do
          config = Config.Reader.read!(path)[:axon_port]
          assert config, code
          Application.put_all_env(axon_port: config)
          assert is_list(AxonPort.Python.config())
        after
          File.rm(path)
        end
      end
    after
      for {k, _} <- Application.get_all_env(:axon_port), do: Application.delete_env(:axon_port, k)
      Application.put_all_env(axon_port: saved)
    end
  end

  @tag :agents
  @tag timeout: 180_000
  test "the API examples run, in doc order, against the documented supervision tree" do
    lb = Loopback.start()

    put_env(%{
      "OPENAI_BASE_URL" => lb.base_url,
      "OPENAI_API_KEY" => "sk-loopback",
      "BANK_MODEL" => "openai-chat:gpt-4o",
      "AXON_PORT_MODEL" => "openai-chat:gpt-4o"
    })

    start_supervised!(MyApp.Bank)
    compile_doc_modules()

    # -- Supervision tree: MyApp.Application's children come up. -------------
    assert {[], _} = exec("Supervision tree", 0)
    # (through a variable: the module is compiled from the doc at run time)
    app = MyApp.Application
    {:ok, sup} = app.start(:normal, [])

    try do
      children = Supervisor.which_children(sup)
      assert [worker] = for({_, pid, :worker, [AxonPort.Worker]} <- children, do: pid)
      assert GenServer.whereis(MyApp.AI) == worker
      assert [_pool] = for({{AxonPort.Pool, :ai_pool}, pid, :supervisor, _} <- children, do: pid)
      eventually(fn -> length(AxonPort.Pool.members(:ai_pool)) == 4 end, 30_000, "4 pool workers")

      run_api_sections(lb)

      os_pids = for w <- [worker | AxonPort.Pool.members(:ai_pool)], do: AxonPort.Worker.os_pid(w)
      :ok = Supervisor.stop(sup)
      for os_pid <- os_pids, do: assert_os_pid_exited(os_pid, 5_000)
    after
      if Process.alive?(sup), do: Supervisor.stop(sup)
    end

    assert Enum.sort(Process.get(:docs_executed)) ==
             Enum.sort(for {section, n} <- @executed, i <- 0..(n - 1), do: {section, i})
  end

  defp run_api_sections(lb) do
    # -- Calling the worker ---------------------------------------------------
    {values, _} = exec("Calling the worker", 0)

    assert [:ok, {:ok, 42}, {:ok, found}, {:ok, describe}, {:ok, stats}, info] = values
    assert found == ["Exchange rates for card payments abroad"]
    names = fn list -> Enum.map(list, & &1["name"]) end
    assert ["add", "search"] -- names.(describe["functions"]) == []
    assert "customer_balance" in names.(describe["tools"])
    assert stats["served_total"] >= 2
    assert %{os_pid: os_pid, ready: %{}, agents: agents} = info
    assert os_pid == AxonPort.Worker.os_pid(MyApp.AI)
    assert "bank_support_agent" in agents

    # -- Agents, runs and conversation history ---------------------------------
    script(lb, [
      calls([{"customer_balance", %{"include_pending" => true}}]),
      answer(%{"support_advice" => "I will block it.", "block_card" => true, "risk" => 8}),
      answer(%{"support_advice" => "Blocked.", "block_card" => true, "risk" => 8})
    ])

    {values, binding} = exec("Agents, runs and conversation history", 0)
    assert [{:ok, "support"}, {:ok, _}, true, 22, {:ok, %{messages: [_ | _]}}] = values

    assert binding[:output] == %{
             "support_advice" => "I will block it.",
             "block_card" => true,
             "risk" => 8
           }

    [first, with_balance, next_turn] = served(lb, 3)
    assert sent?(first, "I lost my card") and sent?(first, "You are a support agent in our bank.")
    assert sent?(with_balance, "$148.45")
    assert sent?(next_turn, "I lost my card") and sent?(next_turn, "Please block it")

    # The same conversation as an AxonPort.History.
    script(lb, [
      answer(%{"support_advice" => "Glad to help.", "block_card" => false, "risk" => 1})
    ])

    {values, _} = exec("Agents, runs and conversation history", 1, binding)
    count = length(binding[:messages]) + length(binding[:more])
    assert [%AxonPort.History{}, {:ok, %{messages: latest}}, %AxonPort.History{}, size] = values
    assert size == count + length(latest)
    [thanks] = served(lb, 1)
    assert sent?(thanks, "I lost my card") and sent?(thanks, "Please block it")
    assert sent?(thanks, "Thanks!")

    # -- Streaming ---------------------------------------------------------------
    story = "Once upon a time a lost card found its way home."
    script(lb, [say(story)])
    {{values, _}, out} = with_io(fn -> exec("Streaming", 0) end)
    assert List.last(values) == {:ok, story}
    assert out == story
    assert [%{"stream" => true} = req] = served(lb, 1)
    assert sent?(req, "Tell me a story") and sent?(req, "You tell very short stories.")

    story = "The card slept in a sock and woke up blocked."
    script(lb, [say(story)])
    {_, out} = with_io(fn -> exec("Streaming", 1) end)
    assert out == story <> "\n"
    assert [%{"stream" => true}] = served(lb, 1)

    # -- Direct model requests: complete ------------------------------------------
    summary = "The customer lost their card and wants it blocked."
    script(lb, [say(summary), say("Lost card: block it.")])
    {_, binding} = exec("Direct model requests: `complete`", 0)
    assert binding[:text] == summary and binding[:calls] == []
    assert binding[:usage]["input_tokens"] == 11
    assert binding[:shorter] == "Lost card: block it."
    [_, conversation] = served(lb, 2)

    assert [{"user", "Summarise this ticket: ..."}, {"assistant", ^summary}, {"user", "Shorter?"}] =
             for(m <- conversation["messages"], do: {m["role"], m["content"]})

    # -- Tools implemented in Elixir ------------------------------------------------
    script(lb, [calls([{"block_card", %{"reason" => "lost"}}]), say("Your card is blocked.")])
    {values, _} = exec("Tools implemented in Elixir", 0)
    assert [{:ok, "cards"}, {:ok, %{output: "Your card is blocked."}}] = values
    assert MyApp.Bank.blocked() == [{123, "lost"}]
    assert [_, tool_result] = served(lb, 2)
    assert sent?(tool_result, "blocked")

    # -- Workflows ------------------------------------------------------------------
    script(lb, [
      calls([
        {"customer_balance", %{"include_pending" => false}},
        {"block_card", %{"reason" => "lost card"}}
      ]),
      answer(%{"support_advice" => "Card blocked.", "block_card" => true, "risk" => 7})
    ])

    {_, binding} = exec("Workflows: `use AxonPort.Workflow`", 0)
    assert binding[:risk] == 7
    assert MyApp.Bank.blocked() == [{123, "lost"}, {123, "lost card"}]
    [_, results] = served(lb, 2)
    assert sent?(results, "$123.45") and sent?(results, "blocked")

    # The triage example's agents, defined on MyApp.AI as its :workflows would
    # (with AXON_PORT_MODEL set above, its model is "openai-chat:gpt-4o").
    for {name, spec} <- AxonPort.Examples.Triage.__agents__() do
      assert {:ok, _} = AxonPort.define_agent(MyApp.AI, name, spec)
    end

    answer_text = "We have blocked your card; a new one is on its way."
    script(lb, [answer(%{"department" => "cards", "urgency" => 4}), say(answer_text)])
    {_, binding} = exec("Workflows: `use AxonPort.Workflow`", 1)
    assert binding[:answer] == answer_text
    [_, specialist] = served(lb, 2)
    assert sent?(specialist, "Urgency 4/5. Customer query: My card was stolen")

    # -- Sessions ---------------------------------------------------------------------
    script(lb, [
      answer(%{"support_advice" => "Shall I block it?", "block_card" => false, "risk" => 5}),
      answer(%{"support_advice" => "Blocked.", "block_card" => true, "risk" => 5})
    ])

    {values, binding} = exec("Sessions", 0)
    assert [{:ok, s}, _, _, history, :ok] = values
    assert length(history) >= 4
    assert AxonPort.Session.history(s) == []
    [_, second] = served(lb, 2)
    assert sent?(second, "I lost my card") and sent?(second, "Block it, please")
    GenServer.stop(binding[:s])

    # -- Pools and multiple nodes ---------------------------------------------------------
    script(lb, [answer(%{"support_advice" => "Hello!", "block_card" => false, "risk" => 0})])
    {values, _} = exec("Pools and multiple nodes", 0)
    assert [{:ok, %{output: %{"risk" => 0}}}, pid, members] = values
    assert length(members) == 4 and pid in members
    refute GenServer.whereis(MyApp.AI) in members
    assert [_] = served(lb, 1)

    # -- Logs and telemetry ----------------------------------------------------------------
    assert {[{:ok, "debug"}, {:ok, "info"}, {:error, %AxonPort.Error{kind: "bad_request"}}], _} =
             exec("Logs and telemetry", 0)

    :ok = :logger.add_handler(:docs_test_log, __MODULE__, %{config: %{pid: self()}})

    try do
      assert {[Logger, :ok], _} = exec("Logs and telemetry", 1)
      script(lb, [answer(%{"support_advice" => "Hi.", "block_card" => false, "risk" => 0})])

      assert {:ok, _} = AxonPort.run(MyApp.AI, "support", "hello", deps: %{"customer_id" => 123})

      assert_receive {:doc_log, "support: 11 in / 7 out"}, 5_000
      assert [_] = served(lb, 1)
    after
      AxonPort.Telemetry.detach("log-tokens")
      :logger.remove_handler(:docs_test_log)
    end
  end

  # -- Evaluating doc blocks -------------------------------------------------------

  defp block!(section, index), do: DocBlocks.block!(blocks(), section, index, @substitutions)

  defp forms(code, line), do: DocBlocks.forms(code, @doc_path, line)

  defp defmodule?(form), do: match?({:defmodule, _, _}, form)

  # Compiles every executed block's top-level `defmodule`s (MyApp.Application,
  # MyApp.Cards, MyApp.Support), as an app's modules are all compiled before it runs.
  defp compile_doc_modules do
    for {section, n} <- @executed, i <- 0..(n - 1) do
      {code, line} = block!(section, i)

      for form <- forms(code, line),
          defmodule?(form),
          do: Code.eval_quoted(form, [], file: @doc_path)
    end
  end

  # Evaluates the block's other top-level expressions in turn; returns their
  # values and the final binding.
  defp exec(section, index, binding \\ []) do
    Process.put(:docs_executed, [{section, index} | Process.get(:docs_executed, [])])
    {code, line} = block!(section, index)
    forms = code |> forms(line) |> Enum.reject(&defmodule?/1)
    DocBlocks.eval_forms(forms, binding, @doc_path, line, section)
  end

  defp put_env(vars) do
    old = for {k, _} <- vars, do: {k, System.get_env(k)}
    System.put_env(vars)

    on_exit(fn ->
      for {k, v} <- old, do: if(v, do: System.put_env(k, v), else: System.delete_env(k))
    end)
  end

  # A :logger handler (added only while the telemetry example runs): forwards
  # every log message's text to the test process.
  @doc false
  def log(%{msg: msg}, %{config: %{pid: pid}}) do
    text =
      case msg do
        {:string, s} -> IO.chardata_to_string(s)
        {:report, r} -> inspect(r)
        {format, args} -> IO.chardata_to_string(:io_lib.format(format, args))
      end

    send(pid, {:doc_log, text})
  end
end
