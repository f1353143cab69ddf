defmodule AxonPort.DocsTest do
  # The Elixir examples of docs/elixir.md: every ```elixir block parses, and the
  # Installation blocks (deps lines, `config :axon_port`) are executed — the deps
  # functions are evaluated and the config is read with Config.Reader and
  # validated by AxonPort.Python.config/0, so a documented option that does not
  # exist fails here.
  use ExUnit.Case, async: false

  @doc_path Path.expand("../../docs/elixir.md", __DIR__)

  defp blocks do
    @doc_path
    |> File.read!()
    |> String.split("\n")
    |> Enum.reduce({nil, nil, []}, fn
      "## " <> title, {nil, _, acc} ->
        {nil, title, acc}

      "```elixir", {nil, section, acc} ->
        {[], section, acc}

      "```", {lines, section, acc} when is_list(lines) ->
        {nil, section, [{section, Enum.join(Enum.reverse(lines), "\n")} | acc]}

      line, {lines, section, acc} when is_list(lines) ->
        {[line | lines], section, acc}

      _line, state ->
        state
    end)
    |> elem(2)
    |> Enum.reverse()
  end

  test "every elixir block of docs/elixir.md parses" do
    fences = @doc_path |> File.read!() |> String.split("\n") |> Enum.count(&(&1 == "```elixir"))
    assert length(blocks()) == fences and fences > 10

    for {section, code} <- blocks() do
      case Code.string_to_quoted(code) do
        {:ok, _} ->
          :ok

        {:error, err} ->
          flunk("docs/elixir.md (#{section}): block does not parse: #{inspect(err)}\n#{code}")
      end
    end
  end

  test "the Installation deps lines are valid dependency specs of :axon_port" do
    deps_blocks = for {"Installation", code} <- blocks(), code =~ "defp deps", do: code
    assert length(deps_blocks) >= 2

    for {code, i} <- Enum.with_index(deps_blocks) do
      mod = Module.concat(AxonPort.DocsTest, "Deps#{i}")
      Code.eval_string("defmodule #{inspect(mod)} do\n def deps_(), do: deps()\n#{code}\nend")
      assert [{:axon_port, opts}] = mod.deps_()
      assert opts[:path] || (opts[:git] && opts[:sparse] == "mix_fixture")
    end
  end

  test "the documented `config :axon_port` blocks are real, valid options" do
    config_blocks = for {_, code} <- blocks(), code =~ "config :axon_port", do: code
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
end
