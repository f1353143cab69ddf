defmodule AxonPort.AgentsDocTest do
  # The Elixir examples of docs/agents.md, run through the Elixir client
  # (AxonPort.define_agent/3, AxonPort.run/4) against a real worker (issues 10, 11).
  # Its JSON request/reply pairs are run by tests/worker/test_agents_doc.py.
  #
  # Every ```elixir block parses, and each one is executed or checked here
  # (@blocks says how); a new block fails "every block is covered" until it is:
  #
  # * "Defining an agent": evaluated as it is (binding `w`: a worker that loaded
  #   test/support/py/my_app_tools.py, which registers `customer_balance`), then
  #   run with the block's own model (`"test"` calls every tool) and with the
  #   script model of the "Models" block (per-run `model:`), whose `card_status`
  #   call reaches the block's Elixir handler;
  # * the capability fragments: each top-level fragment is evaluated as a keyword
  #   list, an agent is defined with it through the client and run (see each
  #   test). Models that need a provider talk to the loopback OpenAI server
  #   (tests/support/openai_loopback_port.py, AxonPort.Loopback) through the
  #   worker's OPENAI_BASE_URL or an openai-compatible model map. The MCP
  #   fragments' placeholders are replaced by the real server
  #   tests/support/mcp_servers/calc_server.py (`"python"` → the venv's python,
  #   `"server.py"` → its path, `http://127.0.0.1:8000/mcp` → where it listens);
  # * the error term ("The spec" block 1) and the `tool_call` frame ("Running"):
  #   shape illustrations, turned into patterns (`[...]` → `_`, a string ending in
  #   `...` → that prefix, the variable `run_id` → pinned to the real run's id)
  #   and matched against what a real run gives the client: the error of the
  #   "Defining an agent" agent whose output keeps breaking `max: 10`, and the
  #   `tool_call` frame the AxonPort.Worker process received (traced) in the
  #   script-model run;
  # * the multimodal prompt ("Prompts and content"): evaluated with a real PNG's
  #   bytes (docs/performance/runs.png) against the loopback, which must have got
  #   the image.
  use ExUnit.Case, async: false

  import AxonPort.TestHelpers
  import AxonPort.Loopback, only: [script: 2, served: 2, sent?: 2, say: 1, calls: 1, fail: 2]

  alias AxonPort.{DocBlocks, Loopback}

  @moduletag :agents
  @moduletag timeout: 120_000

  @doc_path Path.expand("../../docs/agents.md", __DIR__)
  @calc Path.expand("../../tests/support/mcp_servers/calc_server.py", __DIR__)
  @png Path.expand("../../docs/performance/runs.png", __DIR__)

  # {section, index} => how the block is executed (every block of the doc).
  @blocks %{
    {"Defining an agent", 0} => :executed,
    {"The spec: pydantic-ai's AgentSpec plus these extensions", 0} => :fragments,
    {"The spec: pydantic-ai's AgentSpec plus these extensions", 1} => :pattern,
    {"Models", 0} => :fragments,
    {"Running", 0} => :pattern,
    {"Prompts and content", 0} => :executed
  }
  @capabilities {"The spec: pydantic-ai's AgentSpec plus these extensions", 0}

  # The capability fragments, in doc order (each has its test below).
  @fragments ~w(Thinking ToolSearch Instrumentation WebSearch WebFetch ModelFallback
                PrefixTools MCP-http MCP-stdio tool_timeout+metadata+deps_schema)

  defp blocks, do: DocBlocks.blocks(@doc_path)

  defp block!({section, index}), do: DocBlocks.block!(blocks(), section, index)

  defp forms({code, line}), do: DocBlocks.forms(code, @doc_path, line)

  # Evaluates block `key`'s expressions in turn: {values, binding}.
  defp exec({section, _} = key, binding) do
    {code, line} = block!(key)
    DocBlocks.eval_forms(forms({code, line}), binding, @doc_path, line, section)
  end

  # -- The blocks ------------------------------------------------------------------

  test "every elixir block of docs/agents.md parses and is covered here" do
    assert length(blocks()) == DocBlocks.fences(@doc_path)

    keys = DocBlocks.keys(blocks())

    for key <- keys, {code, line} = block!(key) do
      # A :fragments block is keyword-list fragments: each parses inside `[...]`.
      codes =
        if @blocks[key] == :fragments,
          do: for(f <- fragments(key), do: "[\n#{f}\n]"),
          else: [code]

      for c <- codes do
        assert {:ok, _} = Code.string_to_quoted(c, file: @doc_path, line: line),
               "docs/agents.md:#{line} (#{inspect(key)}) does not parse:\n#{c}"
      end
    end

    assert Enum.sort(keys) == Enum.sort(Map.keys(@blocks)),
           "blocks neither executed nor checked: #{inspect(keys -- Map.keys(@blocks))}; " <>
             "listed but missing: #{inspect(Map.keys(@blocks) -- keys)}"

    assert Enum.map(fragments(@capabilities), &fragment_name/1) == @fragments
  end

  # -- Defining an agent, the script model, the tool_call frame, the error term -------

  setup do
    lb = Loopback.start()

    env = %{
      "OPENAI_BASE_URL" => lb.base_url,
      "OPENAI_API_KEY" => "sk-loopback",
      "AXON_TEST_OPENAI_API_KEY" => "sk-loopback"
    }

    w =
      start_supervised!(
        {AxonPort.Worker,
         worker_opts(modules: ["my_app_tools"], env: Map.merge(fixture_env(), env))}
      )

    %{w: w, lb: lb}
  end

  test "Defining an agent: the block defines `support`; its model and the script model run it",
       %{w: w} do
    assert {[{:ok, "support"}], _} = exec({"Defining an agent", 0}, w: w)

    # The block's own model ("test"): every tool is called once, the Python tool
    # reading the run's deps, the remote tool answered by the block's handler.
    assert {:ok, %{output: output, messages: messages}} =
             AxonPort.run(w, "support", "I lost my card", deps: %{"customer_id" => 7})

    assert %{"support_advice" => advice, "block_card" => block?, "risk" => risk} = output
    assert is_binary(advice) and is_boolean(block?) and risk in 0..10
    assert [balance] = tool_returns(messages, "customer_balance")
    assert balance in ["$9000.00", "$9025.00"]
    assert [%{"customer_id" => id, "card" => "active"}] = tool_returns(messages, "card_status")
    assert is_integer(id)

    # The script model of the "Models" block, as the run's model.
    assert [[model: model]] =
             for(f <- fragments({"Models", 0}), do: eval_fragment({"Models", 0}, f))

    frames = trace_frames(w)

    assert {:ok, %{output: output, messages: messages}} =
             AxonPort.run(w, "support", "I lost my card",
               model: model,
               deps: %{"customer_id" => 7}
             )

    assert output == %{"support_advice" => "Blocked.", "block_card" => true, "risk" => 8}
    assert tool_returns(messages, "card_status") == [%{"customer_id" => 7, "card" => "active"}]

    # The `tool_call` frame of "Running" is the one the client received for it.
    received = frames.()
    assert [%{type: :result, id: run_id}] = for(%{type: :result} = f <- received, do: f)
    assert [tool_call] = for(%{type: :tool_call} = f <- received, do: f)
    assert matches?({"Running", 0}, tool_call, run_id: run_id), inspect(tool_call)
    refute matches?({"Running", 0}, tool_call, run_id: run_id + 1)
    refute matches?({"Running", 0}, %{tool_call | args: %{"customer_id" => 8}}, run_id: run_id)
  end

  test "Enforced output: the error term is what a run whose output breaks `max: 10` gives",
       %{w: w} do
    assert {[{:ok, "support"}], _} = exec({"Defining an agent", 0}, w: w)
    bad = %{output: %{support_advice: "Risky.", block_card: false, risk: 11}}
    model = %{provider: "script", responses: [bad, bad, bad]}

    assert {:error, %AxonPort.Error{} = error} =
             AxonPort.run(w, "support", "How risky?", model: model, deps: %{"customer_id" => 7})

    key = {"The spec: pydantic-ai's AgentSpec plus these extensions", 1}
    assert matches?(key, error, []), inspect(error, pretty: true)
    refute matches?(key, %{error | retryable: true}, [])
    refute matches?(key, %{error | message: "Exceeded maximum output retries (3): x"}, [])
    # `retries: %{output: 2}`: the first answer and two retries, each listing the error.
    retries =
      for %{"parts" => parts} <- error.details["messages"],
          %{"outcome" => "retried", "content" => c} <- parts,
          do: c

    assert length(retries) == 2
    assert Enum.all?(retries, &(&1 =~ "- /risk: 11 is greater than the maximum of 10"))
  end

  # -- The capability fragments ------------------------------------------------------

  test "capability fragment: Thinking", %{w: w, lb: lb} do
    spec = fragment!("Thinking") ++ [model: "openai-chat:o3-mini"]
    assert {:ok, "t"} = AxonPort.define_agent(w, "t", spec)
    script(lb, [say("thought about it")])
    assert {:ok, %{output: "thought about it"}} = AxonPort.run(w, "t", "think")
    assert [body] = served(lb, 1)
    # o3-mini is a reasoning model: Thinking's unified setting reaches it as
    # reasoning_effort (gpt-4o would silently drop it).
    assert %{"model" => "o3-mini", "reasoning_effort" => effort} = body
    assert effort in ~w(low medium high)
  end

  test "capability fragment: ToolSearch", %{w: w, lb: lb} do
    archive = %{
      name: "crm_archive",
      description: "Archive the customer's CRM record.",
      handler: {:elixir, fn _args -> "archived" end},
      defer_loading: true
    }

    spec =
      fragment!("ToolSearch") ++
        [model: "openai-chat:gpt-4o", tools: ["customer_balance", archive]]

    assert {:ok, "ts"} = AxonPort.define_agent(w, "ts", spec)
    script(lb, [say("found")])

    assert {:ok, %{output: "found"}} =
             AxonPort.run(w, "ts", "search", deps: %{"customer_id" => 7})

    assert [body] = served(lb, 1)
    # ToolSearch hides the tool marked defer_loading behind its search_tools tool
    # (a search that matches reveals it: tests/worker/test_capabilities.py).
    offered = for t <- body["tools"], do: t["function"]["name"]
    assert "customer_balance" in offered and "search_tools" in offered
    refute "crm_archive" in offered
  end

  test "capability fragment: Instrumentation", %{w: w, lb: lb} do
    spec = fragment!("Instrumentation") ++ [model: "openai-chat:gpt-4o"]
    assert {:ok, "i"} = AxonPort.define_agent(w, "i", spec)
    script(lb, [say("traced")])
    assert {:ok, %{output: "traced"}} = AxonPort.run(w, "i", "go")
    assert [_] = served(lb, 1)
  end

  test "capability fragment: WebSearch", %{w: w, lb: lb} do
    spec = fragment!("WebSearch") ++ [model: "openai-responses:gpt-4o"]
    assert {:ok, "ws"} = AxonPort.define_agent(w, "ws", spec)
    script(lb, [say("searched")])
    assert {:ok, %{output: "searched"}} = AxonPort.run(w, "ws", "news?")
    assert [body] = served(lb, 1)
    # The Responses API gets the provider's native web_search tool.
    assert body["tools"] == [%{"type" => "web_search", "search_context_size" => "medium"}]
  end

  test "capability fragment: WebFetch", %{lb: lb} do
    # WebFetch is native on Anthropic (not on OpenAI): a worker whose
    # "anthropic:..." model string reaches the Anthropic loopback.
    claude = Loopback.start(["--anthropic"])
    env = %{"ANTHROPIC_API_KEY" => "sk-ant-loopback", "ANTHROPIC_BASE_URL" => claude.base_url}

    w =
      start_supervised!(
        {AxonPort.Worker, worker_opts(env: Map.merge(fixture_env(), env))},
        id: :anthropic_worker
      )

    spec = fragment!("WebFetch") ++ [model: "anthropic:claude-loopback"]
    assert {:ok, "wf"} = AxonPort.define_agent(w, "wf", spec)
    script(claude, [say("fetched")])
    assert {:ok, %{output: "fetched"}} = AxonPort.run(w, "wf", "read")
    assert [body] = served(claude, 1)
    assert [%{"name" => "web_fetch", "type" => "web_fetch_" <> _}] = body["tools"]
    served(lb, 0)
  end

  test "capability fragment: ModelFallback", %{w: w, lb: lb} do
    primary = %{
      provider: "openai-compatible",
      name: "primary-1",
      base_url: lb.base_url,
      api_key_env: "AXON_TEST_OPENAI_API_KEY",
      max_retries: 0
    }

    spec = fragment!("ModelFallback") ++ [model: primary]
    assert {:ok, "fb"} = AxonPort.define_agent(w, "fb", spec)
    script(lb, [fail(503, "overloaded"), say("from the fallback")])
    assert {:ok, %{output: "from the fallback"}} = AxonPort.run(w, "fb", "hi")
    assert [%{"model" => "primary-1"}, %{"model" => "backup-2"}] = served(lb, 2)
  end

  test "capability fragment: PrefixTools", %{w: w, lb: lb} do
    spec = fragment!("PrefixTools") ++ [model: "openai-chat:gpt-4o"]
    assert {:ok, "p"} = AxonPort.define_agent(w, "p", spec)
    script(lb, [calls([{"bank_add", %{"a" => 2, "b" => 40}}]), say("42 it is")])
    assert {:ok, %{output: "42 it is", messages: messages}} = AxonPort.run(w, "p", "add")
    assert tool_returns(messages, "bank_add") == [42]
    [first, second] = served(lb, 2)
    names = for t <- first["tools"], do: t["function"]["name"]
    assert "bank_add" in names and "add" not in names, inspect(names)
    assert sent?(second, "42")
  end

  test "capability fragment: MCP-http", %{w: w} do
    port = start_http_mcp(@calc)
    url = "http://127.0.0.1:#{port}/mcp"

    spec =
      fragment!("MCP-http", url: url) ++ [model: calls_model([{"header", %{"name" => "X-Team"}}])]

    assert {:ok, "h"} = AxonPort.define_agent(w, "h", spec)
    assert {:ok, %{output: "done", messages: messages}} = AxonPort.run(w, "h", "who?")
    # The fragment's header reached the server.
    assert tool_returns(messages, "header") == ["a"]
  end

  test "capability fragment: MCP-stdio", %{w: w} do
    spec =
      fragment!("MCP-stdio") ++
        [model: calls_model([{"env", %{"name" => "K"}}, {"add", %{"a" => 2, "b" => 40}}])]

    assert {:ok, "s"} = AxonPort.define_agent(w, "s", spec)
    assert {:ok, %{output: "done", messages: messages}} = AxonPort.run(w, "s", "env?")
    # The fragment's env reached the server.
    assert tool_returns(messages, "env") == ["v"]
    assert tool_returns(messages, "add") == [42]
  end

  test "capability fragment: tool_timeout+metadata+deps_schema", %{w: w, lb: lb} do
    spec =
      fragment!("tool_timeout+metadata+deps_schema") ++
        [model: "openai-chat:gpt-4o", instructions: "Greet {{user}}."]

    assert {:ok, "g"} = AxonPort.define_agent(w, "g", spec)

    assert {:error, %AxonPort.Error{kind: "bad_request"}} =
             AxonPort.run(w, "g", "hi", deps: %{"user" => 7})

    served(lb, 0)
    script(lb, [say("Hello Ada")])

    assert {:ok, %{output: "Hello Ada", messages: [request | _]}} =
             AxonPort.run(w, "g", "hi", deps: %{"user" => "Ada"})

    assert [body] = served(lb, 1)
    assert sent?(body, "Greet Ada.")
    {:ok, %{"agents" => agents}} = AxonPort.describe(w)
    [%{"spec" => described}] = for %{"name" => "g"} = a <- agents, do: a
    # The template rendered against the validated deps.
    assert request["instructions"] == "Greet Ada."
    # tool_timeout and metadata are in the agent's normalised spec (neither shows
    # in a run's result: no tool here runs 30 s, and metadata reaches tools'
    # RunContext only, see tests/worker/test_capabilities.py).
    assert %{"tool_timeout" => 30.0, "metadata" => %{"team" => "a"}} = described
    assert described["deps_schema"]["required"] == ["user"]
  end

  # -- Prompts and content -------------------------------------------------------------

  test "Prompts and content: the multimodal prompt carries the PNG to the model",
       %{w: w, lb: lb} do
    model = %{
      provider: "openai-compatible",
      name: "gpt-4o",
      base_url: lb.base_url,
      api_key_env: "AXON_TEST_OPENAI_API_KEY",
      max_retries: 0
    }

    assert {:ok, "vision"} = AxonPort.define_agent(w, "vision", model: model)
    png = File.read!(@png)
    assert <<0x89, "PNG", _::binary>> = png
    script(lb, [say("A chart.")])

    assert {[{:ok, %{output: "A chart."}}], _} =
             exec({"Prompts and content", 0}, w: w, agent: "vision", png: png)

    assert [body] = served(lb, 1)
    assert %{"role" => "user", "content" => [text, image]} = List.last(body["messages"])
    assert text == %{"type" => "text", "text" => "What is in this picture?"}

    assert %{"type" => "image_url", "image_url" => %{"url" => "data:image/png;base64," <> b64}} =
             image

    assert Base.decode64!(b64) == png
  end

  # -- Helpers ---------------------------------------------------------------------------

  # The keyword-list fragments of a :fragments block (a line at column 0 starts one).
  defp fragments(key) do
    {code, _line} = block!(key)

    code
    |> String.split("\n")
    |> Enum.chunk_while(
      [],
      fn
        <<c, _::binary>> = l, acc when c in [?\s, ?], ?}, ?)] -> {:cont, [l | acc]}
        l, [] -> {:cont, [l]}
        l, acc -> {:cont, Enum.join(Enum.reverse(acc), "\n"), [l]}
      end,
      fn acc -> {:cont, Enum.join(Enum.reverse(acc), "\n"), []} end
    )
  end

  defp eval_fragment({section, _} = key, code) do
    {_, line} = block!(key)

    {[kw], _} =
      DocBlocks.eval_forms(forms({"[\n" <> code <> "\n]", line}), [], @doc_path, line, section)

    kw
  end

  defp fragment_name(code) do
    {kw, _} = Code.eval_string("[\n" <> code <> "\n]")

    case kw[:capabilities] do
      [name] when is_binary(name) -> name
      [%{"MCP" => %{"url" => _}}] -> "MCP-http"
      [%{"MCP" => %{"command" => _}}] -> "MCP-stdio"
      [cap] when map_size(cap) == 1 -> cap |> Map.keys() |> hd()
      nil -> kw |> Keyword.keys() |> Enum.join("+")
    end
  end

  # The fragment `name` evaluated as a keyword list, after the placeholder
  # substitutions (each of which must apply).
  defp fragment!(name, opts \\ []) do
    code =
      Enum.find(fragments(@capabilities), &(fragment_name(&1) == name)) ||
        flunk("no fragment #{name}")

    subs =
      if code =~ "server.py" do
        [{~s("python"), inspect(python())}, {~s("server.py"), inspect(@calc)}]
      else
        []
      end ++ if(opts[:url], do: [{"http://127.0.0.1:8000/mcp", opts[:url]}], else: [])

    code =
      Enum.reduce(subs, code, fn {from, to}, c ->
        assert c =~ from, "stale substitution #{from} in #{name}"
        String.replace(c, from, to)
      end)

    eval_fragment(@capabilities, code)
  end

  defp calls_model(calls) do
    %{
      provider: "script",
      responses: [
        %{tool_calls: for({tool, args} <- calls, do: %{tool: tool, args: args})},
        "done"
      ]
    }
  end

  defp tool_returns(messages, tool) do
    for %{"parts" => parts} <- messages,
        %{"part_kind" => "tool-return", "tool_name" => ^tool, "content" => c} <- parts,
        do: c
  end

  # Whether `value` matches the block `key` read as a pattern: `[...]` is any list,
  # a string ending in `...` any string with that prefix, and the variables in
  # `pins` are pinned to their values.
  defp matches?(key, value, pins) do
    {code, line} = block!(key)
    [form] = forms({code, line})

    pattern =
      Macro.postwalk(form, fn
        [{:..., _, _}] ->
          {:_, [], nil}

        s when is_binary(s) ->
          if String.ends_with?(s, "..."), do: prefix(s), else: s

        {name, _, ctx} = var when is_atom(name) and is_atom(ctx) ->
          if Keyword.has_key?(pins, name), do: {:^, [], [var]}, else: var

        other ->
          other
      end)

    quoted = quote do: match?(unquote(pattern), var!(value))
    {result, _} = Code.eval_quoted(quoted, [{:value, value} | pins], file: @doc_path, line: line)
    result
  end

  defp prefix(s), do: {:<>, [], [String.trim_trailing(s, "..."), {:_, [], nil}]}

  # Traces the frames the worker process receives from its port; the returned fun
  # stops the trace and gives the decoded frames received so far.
  defp trace_frames(w) do
    pid = GenServer.whereis(w)
    1 = :erlang.trace(pid, true, [:receive])

    fn ->
      :erlang.trace(pid, false, [:receive])
      collect([])
    end
  end

  defp collect(acc) do
    receive do
      {:trace, _, :receive, {port, {:data, bin}}} when is_port(port) ->
        {:ok, frame} = AxonPort.Protocol.decode(bin)
        collect([frame | acc])

      {:trace, _, :receive, _} ->
        collect(acc)
    after
      0 -> Enum.reverse(acc)
    end
  end
end
