defmodule AxonPort.DocBlocks do
  @moduledoc """
  The ```elixir blocks of a Markdown doc, for tests that execute them
  (`AxonPort.DocsTest` for docs/elixir.md, `AxonPort.AgentsDocTest` for
  docs/agents.md).

  A block is `{section, code, line}`: the `## ` heading it is under (`nil` before
  the first), its text and the doc line of its first code line.
  """

  import ExUnit.Assertions

  @doc "Every ```elixir block of the doc at `path`, in doc order."
  def blocks(path) do
    path
    |> File.read!()
    |> String.split("\n")
    |> Enum.with_index(1)
    |> Enum.reduce({nil, nil, []}, fn
      {"## " <> title, _}, {nil, _, acc} ->
        {nil, title, acc}

      {"```elixir", n}, {nil, section, acc} ->
        {{n + 1, []}, section, acc}

      {"```", _}, {{line, lines}, section, acc} ->
        {nil, section, [{section, Enum.join(Enum.reverse(lines), "\n"), line} | acc]}

      {line, _}, {{first, lines}, section, acc} ->
        {{first, [line | lines]}, section, acc}

      _line, state ->
        state
    end)
    |> elem(2)
    |> Enum.reverse()
  end

  @doc "How many lines of the doc at `path` open an elixir block."
  def fences(path),
    do: path |> File.read!() |> String.split("\n") |> Enum.count(&(&1 == "```elixir"))

  @doc "`[{section, index}]` of every block, in doc order (index within the section)."
  def keys(blocks) do
    blocks
    |> Enum.group_by(&elem(&1, 0))
    |> Enum.flat_map(fn {section, bs} -> for i <- 0..(length(bs) - 1), do: {section, i} end)
  end

  @doc "Block `index` of `section`: `{code, line}`, with every `{from, to}` of `subs` replaced."
  def block!(blocks, section, index, subs \\ []) do
    case Enum.at(for({^section, code, line} <- blocks, do: {code, line}), index) do
      {code, line} ->
        {Enum.reduce(subs, code, fn {from, to}, c -> String.replace(c, from, to) end), line}

      nil ->
        flunk("no elixir block #{index} in section #{inspect(section)}")
    end
  end

  @doc "The top-level expressions of `code` (parsed as at `line` of `file`)."
  def forms(code, file, line) do
    case Code.string_to_quoted!(code, file: file, line: line) do
      {:__block__, _, forms} -> forms
      form -> [form]
    end
  end

  @doc """
  Evaluates `forms` in turn (binding and requires carried); returns their values
  and the final binding. An exception is re-raised naming the doc line and the form.
  """
  def eval_forms(forms, binding, file, line, label) do
    env = Code.env_for_eval(file: file, line: line)

    {values, {binding, _env}} =
      Enum.map_reduce(forms, {binding, env}, fn form, {binding, env} ->
        {value, binding, env} = eval_form(form, binding, env, file, label)
        {value, {binding, env}}
      end)

    {values, binding}
  end

  defp eval_form(form, binding, env, file, label) do
    Code.eval_quoted_with_env(form, binding, env)
  rescue
    err ->
      line = elem(form, 1)[:line]

      reraise RuntimeError,
              [
                message:
                  "#{Path.relative_to(file, Path.expand("../../..", __DIR__))}:#{line} (#{label}): " <>
                    "#{Exception.message(err)}\n" <> Macro.to_string(form)
              ],
              __STACKTRACE__
  end
end
