defmodule AxonPort.Tool do
  @moduledoc """
  Runs an Elixir tool for a `tool_call` frame (inside a supervised task).

  A handler is a fun of arity 1 (`fun.(args)`) or 2 (`fun.(args, ctx)`), or
  `{Mod, :fun, extra}` (`apply(Mod, :fun, [args | extra])`). `args` is the
  model's argument map (binary keys); `ctx` is
  `%{run_id, call_id, tool, agent, deps, worker}`.

  The return value decides the `tool_result`:

    * `{:ok, value}` or any other value → `ok: value`
    * `{:error, message}` → a tool error the model sees (`retry: false`)
    * `{:retry, message}` → a model retry (`retry: true`): pydantic-ai asks the
      model to call the tool again, counting against the agent's `retries`
    * an exception, throw or exit → a tool error with its message
  """

  @type result :: {:ok, term()} | {:error, String.t(), boolean()}

  @doc false
  @spec validate!(String.t(), term()) :: :ok
  def validate!(_name, fun) when is_function(fun, 1) or is_function(fun, 2), do: :ok

  def validate!(_name, {m, f, a}) when is_atom(m) and is_atom(f) and is_list(a), do: :ok

  def validate!(name, other) do
    raise ArgumentError,
          "tool #{inspect(name)}: an :elixir handler is a fun/1, fun/2 or {M, F, A}, got #{inspect(other)}"
  end

  @doc "Invokes `handler` and maps its outcome to a tool result."
  @spec invoke(term(), map(), map()) :: result()
  def invoke(handler, args, ctx) do
    handler
    |> call(args, ctx)
    |> normalize()
  rescue
    e -> {:error, Exception.message(e), false}
  catch
    kind, reason -> {:error, Exception.format_banner(kind, reason), false}
  end

  defp call(fun, args, _ctx) when is_function(fun, 1), do: fun.(args)
  defp call(fun, args, ctx) when is_function(fun, 2), do: fun.(args, ctx)
  defp call({m, f, a}, args, _ctx), do: apply(m, f, [args | a])

  defp normalize({:ok, value}), do: {:ok, value}
  defp normalize({:error, msg}), do: {:error, message(msg), false}
  defp normalize({:retry, msg}), do: {:error, message(msg), true}
  defp normalize(value), do: {:ok, value}

  defp message(msg) when is_binary(msg), do: msg
  defp message(%{__exception__: true} = e), do: Exception.message(e)
  defp message(other), do: inspect(other)
end
