defmodule AxonPort.Spec do
  @moduledoc """
  Turns an Elixir agent definition into the protocol's agent spec.

  An Elixir definition is a map or keyword list with the wire keys of the
  contract (`model`, `instructions` / `system_prompt`, `tools`, `result_type` /
  `output_schema`, `retries`, `end_strategy`, `model_settings`, `name`,
  `description`, and pydantic-ai's AgentSpec keys `capabilities`, `tool_timeout`,
  `metadata`, `deps_schema`, sent through unchanged) plus two that stay in Elixir:

    * `deps` — default run dependencies, merged under each run's `:deps`;
    * a tool's `handler` — where the tool runs:
      * `{:elixir, fun}` with `fun` of arity 1 (`args`) or 2 (`args, ctx`), or
        `{:elixir, {Mod, :fun, extra_args}}` (called as `Mod.fun(args, ...extra_args)`);
        the tool is declared `remote: true` and answered through `tool_call`;
      * `{:python, function: "name"}` (optionally `module: "..."`, for the
        reader): a tool the worker registered with `@axon_port.registry.tool`.
        It is sent as its bare name, which the worker resolves in its
        registry only — never by importing anything.

  A plain binary in `tools` names a Python tool directly; a map without a
  handler but with `remote: true` is a client tool the caller must handle (none
  is registered, so the worker answers it with a tool error).

  `model: {:system, "ENV_VAR"}` reads the model name from the environment.
  """

  @wire_keys ~w(model instructions system_prompt tools output_schema result_type retries
                end_strategy model_settings name description capabilities tool_timeout
                metadata deps_schema)a

  @default_parameters %{"type" => "object", "properties" => %{}, "additionalProperties" => true}

  @typedoc "Elixir-side state for an agent: tool handlers and default deps."
  @type local :: %{tools: %{optional(String.t()) => term()}, deps: map() | nil}

  @doc """
  Splits a definition into `{wire_spec, local}`. Raises `ArgumentError` for an
  invalid definition (unknown key, malformed tool, unset `{:system, var}`).
  """
  @spec to_wire(map() | keyword()) :: {map(), local()}
  def to_wire(spec) when is_list(spec), do: to_wire(Map.new(spec))

  def to_wire(%{} = spec) do
    spec = Map.new(spec, fn {k, v} -> {key(k), v} end)
    {deps, spec} = Map.pop(spec, :deps)
    # `module:` in the design-discussion DSL names the Python module that
    # registers the agent's tools; the worker must have loaded it with
    # --module, so here it is documentation only.
    spec = Map.delete(spec, :module)

    case Map.keys(spec) -- @wire_keys do
      [] -> :ok
      unknown -> raise ArgumentError, "unknown agent spec keys: #{inspect(unknown)}"
    end

    {tools, handlers} =
      spec
      |> Map.get(:tools, [])
      |> Enum.map(&tool/1)
      |> Enum.unzip()

    wire =
      spec
      |> Map.update(:model, "test", &model/1)
      |> put_tools(tools)
      |> Map.update(:result_type, nil, &result_type/1)
      |> drop_nil(:result_type)

    {wire, %{tools: handlers |> Enum.reject(&is_nil/1) |> Map.new(), deps: deps}}
  end

  defp key(k) when is_atom(k), do: k
  defp key(k) when is_binary(k), do: String.to_existing_atom(k)

  defp put_tools(spec, []), do: Map.delete(spec, :tools)
  defp put_tools(spec, tools), do: Map.put(spec, :tools, tools)

  defp drop_nil(map, key) do
    if Map.get(map, key) == nil, do: Map.delete(map, key), else: map
  end

  defp model({:system, var}) do
    System.get_env(var) || raise ArgumentError, "model: environment variable #{var} is not set"
  end

  defp model(m) when is_binary(m) or is_map(m), do: m
  defp model(m) when is_atom(m), do: Atom.to_string(m)

  # Field names become binaries; type names stay atoms (the worker reads both).
  # The worker checks the types: an unknown one is a `bad_request` error.
  @doc false
  def result_type(%{} = rt) do
    Map.new(rt, fn {k, v} -> {to_string(k), field_type(v)} end)
  end

  def result_type(other), do: other

  defp field_type(%{} = nested), do: result_type(nested)
  defp field_type([t]), do: [field_type(t)]
  defp field_type({:list, t}), do: {:list, field_type(t)}
  defp field_type(t), do: t

  # Returns {wire tool, {name, handler} | nil}.
  defp tool(name) when is_binary(name) or is_atom(name), do: {to_string(name), nil}

  defp tool(%{} = t) do
    t = Map.new(t, fn {k, v} -> {key(k), v} end)
    name = to_string(Map.fetch!(t, :name))

    case Map.get(t, :handler) do
      {:python, opts} ->
        opts = Keyword.validate!(opts, [:function, :module])

        function =
          case Keyword.fetch(opts, :function) do
            {:ok, f} ->
              to_string(f)

            :error ->
              raise ArgumentError,
                    "tool #{inspect(name)}: a {:python, ...} handler needs function: " <>
                      "(the name the worker registered the tool under)"
          end

        if function != name do
          raise ArgumentError,
                "tool #{inspect(name)}: a {:python, ...} handler must name the registered " <>
                  "tool of the same name, got function: #{inspect(function)}"
        end

        {function, nil}

      {:elixir, handler} ->
        AxonPort.Tool.validate!(name, handler)
        {remote_tool(t, name), {name, handler}}

      nil ->
        if Map.get(t, :remote) do
          {remote_tool(t, name), nil}
        else
          raise ArgumentError, "tool #{inspect(name)}: needs a :handler or remote: true"
        end

      other ->
        raise ArgumentError, "tool #{inspect(name)}: unsupported handler #{inspect(other)}"
    end
  end

  defp tool(other), do: raise(ArgumentError, "invalid tool #{inspect(other)}")

  defp remote_tool(t, name) do
    %{
      name: name,
      description: to_string(Map.get(t, :description, "")),
      parameters: Map.get(t, :parameters, @default_parameters),
      remote: true
    }
    # pydantic-ai Tool options of a remote tool, sent through unchanged; with
    # requires_approval a call waits for a person's decision (AxonPort.Approvals); with
    # defer_loading the tool is hidden until the ToolSearch capability reveals it.
    |> Map.merge(
      Map.take(t, [
        :timeout_ms,
        :retries,
        :strict,
        :sequential,
        :requires_approval,
        :defer_loading
      ])
    )
  end
end
