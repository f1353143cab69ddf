defmodule AxonPort.Pool do
  @moduledoc """
  N workers under a supervisor, found through a `:pg` process group, so one
  pool name can span several BEAM nodes.

      children = [
        {AxonPort.Pool, name: :ai, size: 2, worker: [modules: ["my_tools"], workflows: [MyApp.Flow]]}
      ]

      AxonPort.run({:pool, :ai}, "support", "hello")

  Each worker joins the group `{AxonPort.Pool, name}` in the `AxonPort.PG`
  scope once it is ready (and leaves it when it dies), so a restarting worker
  receives no requests. Starting a pool with the same name on another connected
  node adds its workers to the same group: `pick/1` then routes to workers on
  every node.

  Routing (`:strategy`):

    * `:least_loaded` (default) — "power of two choices": ask two random members
      for their in-flight count (`AxonPort.Worker.load/1`) and take the smaller.
      Cheap, works across nodes, and avoids herding onto one worker.
    * `:round_robin` — a per-pool counter over the sorted member list.

  The strategy is the pool's, on every node: a node that did not start the
  pool learns it from one of the group's workers on its first `pick/2` (and
  remembers it). With `local_only: true` in `pick/2`, only this node's workers
  are considered.
  """

  use Supervisor

  @scope AxonPort.PG

  @doc """
  Starts a pool. Options: `:name` (required, any term), `:size` (default
  `System.schedulers_online()`), `:worker` (options for each
  `AxonPort.Worker`), `:strategy` (`:least_loaded` or `:round_robin`).
  """
  @spec start_link(keyword()) :: Supervisor.on_start()
  def start_link(opts) do
    opts = validate!(opts)
    name = Keyword.fetch!(opts, :name)
    # Atom names also name the pool's supervisor; other terms only name the group.
    sup_opts = if is_atom(name), do: [name: :"#{__MODULE__}.#{name}"], else: []
    Supervisor.start_link(__MODULE__, opts, sup_opts)
  end

  @doc false
  def child_spec(opts) do
    opts = validate!(opts)

    %{
      id: {__MODULE__, Keyword.fetch!(opts, :name)},
      start: {__MODULE__, :start_link, [opts]},
      type: :supervisor
    }
  end

  defp validate!(opts) do
    opts = Keyword.validate!(opts, [:name, :size, :worker, :strategy])

    unless Keyword.has_key?(opts, :name), do: raise(ArgumentError, "AxonPort.Pool needs :name")

    unless Keyword.get(opts, :strategy, :least_loaded) in [:least_loaded, :round_robin] do
      raise ArgumentError,
            "AxonPort.Pool :strategy must be :least_loaded or :round_robin, " <>
              "got: #{inspect(opts[:strategy])}"
    end

    opts
  end

  @impl true
  def init(opts) do
    name = Keyword.fetch!(opts, :name)
    size = Keyword.get(opts, :size, System.schedulers_online())
    strategy = Keyword.get(opts, :strategy, :least_loaded)

    worker_opts =
      opts
      |> Keyword.get(:worker, [])
      |> Keyword.merge(pool: name, pool_strategy: strategy)

    :persistent_term.put({__MODULE__, name, :strategy}, strategy)

    children =
      for i <- 1..size do
        Supervisor.child_spec({AxonPort.Worker, worker_opts}, id: {:worker, i})
      end

    Supervisor.init(children, strategy: :one_for_one, max_restarts: 10, max_seconds: 5)
  end

  @doc "All ready workers of the pool, on every connected node."
  @spec members(term()) :: [pid()]
  def members(name), do: :pg.get_members(@scope, {__MODULE__, name})

  @doc "This node's ready workers of the pool."
  @spec local_members(term()) :: [pid()]
  def local_members(name), do: :pg.get_local_members(@scope, {__MODULE__, name})

  @doc """
  Picks a worker for one request, or `nil` when the pool has none ready.
  Options: `:local_only` (default false), `:strategy` (overrides the pool's).
  """
  @spec pick(term(), keyword()) :: pid() | nil
  def pick(name, opts \\ []) do
    members = if opts[:local_only], do: local_members(name), else: members(name)

    choose(members, opts[:strategy] || strategy(name, members), name)
  end

  # The pool's strategy: known on the nodes that started the pool; any other
  # node asks one of the group's workers (each knows its pool's strategy) and
  # remembers the answer.
  defp strategy(name, members) do
    case :persistent_term.get({__MODULE__, name, :strategy}, nil) do
      nil -> remote_strategy(name, members)
      strategy -> strategy
    end
  end

  defp remote_strategy(_name, []), do: :least_loaded

  defp remote_strategy(name, [pid | rest]) do
    case GenServer.call(pid, :pool_strategy, 5_000) do
      strategy when strategy in [:least_loaded, :round_robin] ->
        :persistent_term.put({__MODULE__, name, :strategy}, strategy)
        strategy

      _ ->
        remote_strategy(name, rest)
    end
  catch
    :exit, _ -> remote_strategy(name, rest)
  end

  defp choose([], _strategy, _name), do: nil
  defp choose([pid], _strategy, _name), do: pid

  defp choose(members, :round_robin, name) do
    counter =
      case :persistent_term.get({__MODULE__, name, :rr}, nil) do
        nil ->
          c = :atomics.new(1, [])
          :persistent_term.put({__MODULE__, name, :rr}, c)
          c

        c ->
          c
      end

    members = Enum.sort(members)
    n = :atomics.add_get(counter, 1, 1)
    Enum.at(members, rem(n, length(members)))
  end

  defp choose(members, :least_loaded, _name) do
    [a, b] = Enum.take_random(members, 2)
    if load(a) <= load(b), do: a, else: b
  end

  defp load(pid) do
    AxonPort.Worker.load(pid)
  catch
    # A worker that died since :pg listed it: never prefer it.
    :exit, _ -> :infinity
  end
end
