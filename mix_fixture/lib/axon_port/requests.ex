defmodule AxonPort.Requests do
  @moduledoc false
  # What `AxonPort`'s functions send: the request payload (the protocol's
  # request map, without `id`) and the `meta` `AxonPort.Worker.request/4` and
  # `start_stream/3` take, built from a function's arguments and options; and
  # the worker(s) a target names (`pick/1` for one attempt, `workers/1` for
  # every worker of a pool).

  alias AxonPort.{Pool, Spec}

  # Request fields a run takes from its options, as the protocol names them.
  @run_opts [
    :history,
    :deps,
    :model_settings,
    :usage_limits,
    :deferred_tool_results,
    :model,
    :instructions,
    :metadata,
    :usage
  ]
  # ... and those `complete` takes.
  @complete_opts [:tools, :model_settings, :output_schema]

  @doc false
  @spec run_opts() :: [atom()]
  def run_opts, do: @run_opts

  @doc false
  @spec complete_opts() :: [atom()]
  def complete_opts, do: @complete_opts

  @doc false
  # A run's (or, with `stream?`, a streaming run's) payload and meta. `agent`
  # is a defined agent's name or an inline spec, whose Elixir tools and default
  # deps stay in `meta`.
  @spec run(String.t() | atom() | map() | keyword(), term(), keyword(), boolean()) ::
          {map(), keyword()}
  def run(agent, prompt, opts, stream?) do
    base = %{op: :run, prompt: prompt, stream: stream?}

    base =
      Enum.reduce(@run_opts, base, fn key, acc ->
        case Keyword.fetch(opts, key) do
          {:ok, nil} -> acc
          {:ok, value} -> Map.put(acc, key, value)
          :error -> acc
        end
      end)

    case agent do
      name when is_binary(name) or is_atom(name) ->
        name = to_string(name)
        {Map.put(base, :agent, name), [op: :run, agent: name, deps: opts[:deps]]}

      spec when is_map(spec) or is_list(spec) ->
        {wire, local} = Spec.to_wire(spec)
        deps = if local.deps, do: Map.merge(local.deps, opts[:deps] || %{}), else: opts[:deps]
        payload = if deps, do: Map.put(base, :deps, deps), else: base
        {Map.put(payload, :spec, wire), [op: :run, tools: local.tools, deps: deps]}
    end
  end

  @doc false
  # A `call` request's payload. `kwargs` is optional in the protocol: an empty
  # map is left out (the worker calls the function without keyword arguments
  # either way), which keeps the frame and its decoding short.
  @spec call(String.t() | atom(), list(), map() | keyword()) :: map()
  def call(function, args, kwargs) do
    payload = %{op: :call, function: to_string(function), args: args}
    kwargs = Map.new(kwargs)
    if map_size(kwargs) == 0, do: payload, else: Map.put(payload, :kwargs, kwargs)
  end

  @doc false
  # A `complete` request's payload (without `stream`).
  @spec complete(String.t() | atom() | map(), list() | String.t(), keyword()) :: map()
  def complete(model, messages, opts) do
    model = if is_atom(model), do: Atom.to_string(model), else: model
    base = %{op: :complete, model: model, messages: messages}

    Enum.reduce(@complete_opts, base, fn key, acc ->
      case Keyword.get(opts, key) do
        nil -> acc
        value -> Map.put(acc, key, value)
      end
    end)
  end

  @doc false
  # The worker one attempt goes to: a pool picks one per attempt.
  @spec pick(AxonPort.target()) :: {:ok, GenServer.server()} | {:error, :noproc}
  def pick({:pool, pool}) do
    case Pool.pick(pool) do
      nil -> {:error, :noproc}
      pid -> {:ok, pid}
    end
  end

  def pick(server), do: {:ok, server}

  @doc false
  # Every worker a target names now (a pool's current members).
  @spec workers(AxonPort.target()) :: [pid() | {atom(), node()}]
  def workers({:pool, pool}), do: Pool.members(pool)

  def workers(server) do
    case GenServer.whereis(server) do
      nil -> []
      pid -> [pid]
    end
  end
end
