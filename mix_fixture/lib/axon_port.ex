defmodule AxonPort do
  @moduledoc """
  Run pydantic-ai agents and registered Python functions from Elixir.

  Every function takes a `target`: a worker (`AxonPort.Worker` pid or
  registered name, local or `{name, node}`) or `{:pool, name}` for an
  `AxonPort.Pool` — a pool picks a worker per attempt, so a retry after a
  worker crash lands on a live worker.

      {:ok, _} = AxonPort.Worker.start_link(name: MyApp.AI, modules: ["my_tools"])
      {:ok, "bank"} = AxonPort.define_agent(MyApp.AI, "bank", model: "test", instructions: "...")
      {:ok, %{output: output, usage: usage, messages: messages}} =
        AxonPort.run(MyApp.AI, "bank", "What is my balance?")
      # next turn: pass the history back
      AxonPort.run(MyApp.AI, "bank", "And yesterday?", history: messages)

  Results are `{:ok, value}` or `{:error, reason}` where `reason` is an
  `AxonPort.Error` (an `error` frame, or `kind: "timeout"` when the caller's
  timeout expired and the request was cancelled) or a transport failure:
  `{:worker_exit, status}` (the worker process died while the request was in
  flight), `{:worker_down, reason}` (the worker GenServer is gone) or `:noproc`.
  """

  alias AxonPort.{Error, Requests, Retry, Spec, Worker}

  @type target :: GenServer.server() | {:pool, term()}
  @type reason :: Error.t() | Worker.failure()
  @type run_result :: %{
          optional(:deferred) => %{String.t() => [map()]},
          required(:output) => term(),
          required(:usage) => map(),
          required(:messages) => list(),
          required(:elapsed_ms) => number() | nil
        }

  @type retry_policy ::
          false
          | [
              max_attempts: pos_integer(),
              base_delay: non_neg_integer(),
              max_delay: non_neg_integer(),
              jitter: boolean()
            ]

  @default_retry Retry.default()
  @complete_opts Requests.complete_opts()
  @run_opts Requests.run_opts()

  @doc """
  Defines (or redefines) an agent named `name` on the worker(s).

  `spec` is a map or keyword list: see `AxonPort.Spec` for the keys, including
  Elixir tool handlers (`handler: {:elixir, fun}`) and default `deps`. On a pool,
  the agent is defined on every worker currently in the group. Agents that must
  survive a worker restart belong in the worker's `:agents` or `:workflows`
  option instead.
  """
  @spec define_agent(target(), atom() | String.t(), map() | keyword(), keyword()) ::
          {:ok, String.t()} | {:error, reason()}
  def define_agent(target, name, spec, opts \\ []) do
    name = to_string(name)
    timeout = Keyword.validate!(opts, timeout: 30_000)[:timeout]

    case workers(target) do
      [] ->
        {:error, :noproc}

      pids ->
        {wire, local} = Spec.to_wire(spec)
        payload = %{op: :define_agent, name: name, spec: wire}
        meta = [op: :define_agent, agent: name, local: local]

        pids
        |> Enum.map(&Worker.request(&1, payload, meta, timeout))
        |> Enum.find({:ok, name}, &match?({:error, _}, &1))
    end
  end

  @doc """
  Runs an agent to completion.

  `agent` is a defined agent's name or an inline spec (map or keyword, as for
  `define_agent/3`, Elixir tools included). Options:

    * `:history` — earlier messages (the `messages` of previous results,
      concatenated) for a multi-turn conversation;
    * `:deps`, `:model_settings`, `:usage_limits` — passed to the run;
    * `:model`, `:instructions`, `:metadata`, `:usage` — per-run overrides, as
      pydantic-ai's `run()` takes them (another model, extra instructions, metadata
      merged over the spec's, usage to continue counting from);
    * `:deferred_tool_results` — decisions for a run that ended with `deferred`
      (`%{approvals: ..., calls: ...}`; see `resume/4`);
    * `:timeout` — ms to wait (default 120 s); on expiry the run is cancelled and
      `{:error, %AxonPort.Error{kind: "timeout"}}` is returned;
    * `:retry` — a retry policy (default
      `#{inspect(@default_retry)}`) or `false`. Errors marked `retryable`, worker
      exits and a missing worker are retried with exponential backoff
      (`base_delay * 2^(attempt-1)`, capped at `max_delay`) and, with `jitter`,
      a random delay between half and all of that. Other errors return at once.

  An unknown option raises `ArgumentError`.

  Returns `{:ok, %{output: ..., usage: ..., messages: ..., elapsed_ms: ...}}`.
  """
  @spec run(
          target(),
          String.t() | atom() | map() | keyword(),
          AxonPort.Content.prompt(),
          keyword()
        ) ::
          {:ok, run_result()} | {:error, reason()}
  def run(target, agent, prompt, opts \\ []) do
    opts = Keyword.validate!(opts, @run_opts ++ [:timeout, :retry])
    {payload, meta} = Requests.run(agent, prompt, opts, false)
    timeout = Keyword.get(opts, :timeout, 120_000)

    with_retry(Keyword.get(opts, :retry, @default_retry), fn ->
      with {:ok, worker} <- pick(target) do
        Worker.request(worker, payload, meta, timeout)
      end
    end)
  end

  @doc """
  Resumes a run that ended waiting for approvals or deferred tool calls
  (`deferred` in its result). See `AxonPort.Approvals.resume/4`.
  """
  defdelegate resume(target, agent, history, opts \\ []), to: AxonPort.Approvals

  @doc """
  Starts a streaming run; events are sent as messages to `opts[:to]` (default:
  the caller).

  Returns `{:ok, {worker, ref}}` — `worker` the pid serving the stream (pass
  the pair to `cancel/2`), `ref` the reference every message carries — or
  `{:error, reason}` if it could not start (e.g. `:noproc`, an empty pool).
  The receiver then gets
  `{:axon_port, ref, {:chunk, event, data}}` messages (`event` is
  `"text_delta"`, `"output_partial"`, `"tool_call"`, `"tool_result"`, ...) and
  then exactly one `{:axon_port, ref, {:result, run_result}}` or
  `{:axon_port, ref, {:error, reason}}` — also when the worker is killed or its
  node goes down (`{:error, {:worker_down, reason}}`). Cancel with `cancel/2`;
  if the receiver exits the run is cancelled. Streams are never retried (chunks may already
  have been delivered). Options as for `run/4`, except `:timeout` and `:retry`.
  See `stream!/4` for an Elixir `Stream`.
  """
  @spec stream(
          target(),
          String.t() | atom() | map() | keyword(),
          AxonPort.Content.prompt(),
          keyword()
        ) ::
          {:ok, {worker :: pid(), reference()}} | {:error, reason()}
  def stream(target, agent, prompt, opts \\ []) do
    opts = Keyword.validate!(opts, [:to | @run_opts])
    {payload, meta} = Requests.run(agent, prompt, opts, true)
    meta = Keyword.put(meta, :to, Keyword.get(opts, :to, self()))

    with {:ok, worker} <- pick(target),
         {:ok, ref} <- Worker.start_stream(worker, payload, meta) do
      {:ok, {worker, ref}}
    end
  end

  @doc """
  A lazy `Stream` of a streaming run's events: `{:chunk, event, data}` items,
  then one final `{:result, run_result}` or `{:error, reason}`.

  The run starts when the stream is enumerated and is cancelled if enumeration
  stops early (`Enum.take/2`, an exception). `:idle_timeout` (default 120 s) is
  the longest wait for the next event; when it passes, the run is cancelled and
  the stream ends with `{:error, %AxonPort.Error{kind: "timeout"}}`.
  """
  @spec stream!(
          target(),
          String.t() | atom() | map() | keyword(),
          AxonPort.Content.prompt(),
          keyword()
        ) ::
          Enumerable.t()
  def stream!(target, agent, prompt, opts \\ []) do
    {idle, opts} =
      Keyword.pop(Keyword.validate!(opts, [{:idle_timeout, 120_000} | @run_opts]), :idle_timeout)

    Stream.resource(
      fn ->
        case stream(target, agent, prompt, Keyword.put(opts, :to, self())) do
          {:ok, handle} -> {:running, handle}
          {:error, reason} -> {:failed, reason}
        end
      end,
      fn
        {:failed, reason} ->
          {[{:error, reason}], :done}

        :done ->
          {:halt, :done}

        {:running, {worker, ref}} = acc ->
          receive do
            {:axon_port, ^ref, {:chunk, _, _} = chunk} -> {[chunk], acc}
            {:axon_port, ^ref, terminal} -> {[terminal], :done}
          after
            idle ->
              Worker.cancel(worker, ref)
              flush(ref)
              err = %Error{kind: "timeout", message: "no stream event within #{idle} ms"}
              {[{:error, err}], :done}
          end
      end,
      fn
        {:running, {worker, ref}} ->
          Worker.cancel(worker, ref)
          flush(ref)

        _ ->
          :ok
      end
    )
  end

  # Drops the rest of a cancelled stream's messages (up to its terminal one).
  defp flush(ref) do
    receive do
      {:axon_port, ^ref, {:chunk, _, _}} -> flush(ref)
      {:axon_port, ^ref, _terminal} -> :ok
    after
      5_000 -> :ok
    end
  end

  @doc """
  One direct model request, without the agent loop (the protocol's `complete`).

  `model` is any model form an agent spec accepts (`"test"`,
  `"openai-chat:gpt-4o"`, a map such as `%{provider: "script", responses: [...]}`);
  `messages` is the conversation as pydantic-ai message data (e.g. the
  `messages` of earlier results, concatenated) or a binary, shorthand for one
  user prompt. Options:

    * `:tools` — tool definitions the model may call (`%{name:, description:,
      parameters:}`, `parameters` a JSON Schema); nothing is executed, the calls
      are returned in `output["tool_calls"]`;
    * `:model_settings` — a map of pydantic-ai model settings;
    * `:output_schema` — a JSON Schema offered as an output tool; the arguments
      are checked and returned in `output["output"]` (a mismatch is a
      `validation_error`);
    * `:timeout` — ms to wait (default 120 s); on expiry the request is
      cancelled and `{:error, %AxonPort.Error{kind: "timeout"}}` is returned;
    * `:retry` — as for `run/4` (same default: nothing runs twice but the model
      request itself);
    * `:stream_to` — a pid: stream the request instead. Returns
      `{:ok, {worker, ref}}` at once and sends that pid the messages described
      in `stream/4` (`{:result, complete_result}` last); `:timeout` and `:retry`
      do not apply, cancel with `cancel/2`.

  Returns `{:ok, %{output: output, usage: ..., messages: [response], elapsed_ms: ...}}`
  where `output` is `%{"text" => binary | nil, "tool_calls" => [...],
  "finish_reason" => ...}` (plus `"output"` with `:output_schema`) and
  `messages` the model's response, to append to the conversation.
  """
  @spec complete(target(), String.t() | atom() | map(), list() | String.t(), keyword()) ::
          {:ok, run_result()} | {:ok, {pid(), reference()}} | {:error, reason()}
  def complete(target, model, messages, opts \\ []) do
    opts = Keyword.validate!(opts, @complete_opts ++ [:timeout, :retry, :stream_to])
    payload = Requests.complete(model, messages, opts)

    case Keyword.get(opts, :stream_to) do
      nil ->
        timeout = Keyword.get(opts, :timeout, 120_000)

        with_retry(Keyword.get(opts, :retry, @default_retry), fn ->
          with {:ok, worker} <- pick(target) do
            Worker.request(worker, payload, [op: :complete], timeout)
          end
        end)

      to when is_pid(to) ->
        with {:ok, worker} <- pick(target),
             {:ok, ref} <-
               Worker.start_stream(worker, Map.put(payload, :stream, true), op: :complete, to: to) do
          {:ok, {worker, ref}}
        end
    end
  end

  @doc """
  Sets the worker's Python log level (`:debug`, `:info`, `:warning`, `:error`,
  `:critical`, as an atom or a binary, any case): which `logging` records
  become `log` frames, and so `Logger` calls.

  Returns `{:ok, level}` with the level now in force as a binary (`{:ok,
  "debug"}`); an unknown level is `{:error, %AxonPort.Error{kind:
  "bad_request"}}`. On a pool, the level is set on every worker currently in
  the group (workers started later use their `:log_level` option). Options:
  `:timeout` (default 5 s).
  """
  @spec set_log_level(target(), atom() | String.t(), keyword()) ::
          {:ok, String.t()} | {:error, reason()}
  def set_log_level(target, level, opts \\ []) when is_atom(level) or is_binary(level) do
    timeout = Keyword.validate!(opts, timeout: 5_000)[:timeout]
    payload = %{op: :set_log_level, level: to_string(level)}

    case workers(target) do
      [] ->
        {:error, :noproc}

      pids ->
        results = Enum.map(pids, &Worker.request(&1, payload, [op: :set_log_level], timeout))
        Enum.find(results, hd(results), &match?({:error, _}, &1))
    end
  end

  @doc "Cancels a stream started with `stream/4`."
  @spec cancel(target(), {pid(), reference()}) :: :ok
  def cancel(_target, {worker, ref}), do: Worker.cancel(worker, ref)

  @doc """
  Calls a Python function registered with `@axon_port.registry.function`.

  `args` is a list of positional arguments, `kwargs` a map of keyword
  arguments. Options: `:timeout` (default 5 s; the call is cancelled on expiry),
  `:retry` (default `false`; see `run/4`). Returns `{:ok, return_value}`.
  """
  @spec call(target(), String.t() | atom(), list(), map(), keyword()) ::
          {:ok, term()} | {:error, reason()}
  def call(target, function, args \\ [], kwargs \\ %{}, opts \\ []) do
    simple(target, Requests.call(function, args, kwargs), :call, opts, 5_000)
  end

  @doc "Round trip to the worker: `:ok` when it answered `pong`."
  @spec ping(target(), keyword()) :: :ok | {:error, reason()}
  def ping(target, opts \\ []) do
    simple(target, %{op: :ping}, :ping, opts, 5_000)
  end

  @doc """
  The worker's registry: its agents, Python tools and functions with their
  JSON schemas (binary keys).
  """
  @spec describe(target(), keyword()) :: {:ok, map()} | {:error, reason()}
  def describe(target, opts \\ []) do
    simple(target, %{op: :describe}, :describe, opts, 10_000)
  end

  @doc """
  The worker's counters (`inflight`, `served`, `served_total`, `errors`,
  `uptime_ms`, `rss_bytes`, ...; binary keys — see `docs/protocol.md`).
  """
  @spec stats(target(), keyword()) :: {:ok, map()} | {:error, reason()}
  def stats(target, opts \\ []) do
    simple(target, %{op: :stats}, :stats, opts, 5_000)
  end

  # No options, the common case: the defaults (no retry), without Keyword.validate!/2.
  defp simple(target, payload, op, [], default_timeout) do
    with {:ok, worker} <- pick(target) do
      Worker.request(worker, payload, [op: op], default_timeout)
    end
  end

  defp simple(target, payload, op, opts, default_timeout) do
    opts = Keyword.validate!(opts, timeout: default_timeout, retry: false)
    timeout = opts[:timeout]

    with_retry(opts[:retry], fn ->
      with {:ok, worker} <- pick(target) do
        Worker.request(worker, payload, [op: op], timeout)
      end
    end)
  end

  defp pick(target), do: Requests.pick(target)
  defp workers(target), do: Requests.workers(target)

  @doc false
  # Public for tests: runs `fun` under a retry policy.
  @spec with_retry(retry_policy() | keyword(), (() -> {:ok, term()} | {:error, term()} | term())) ::
          term()
  defdelegate with_retry(policy, fun), to: Retry

  @doc """
  True for failures worth retrying: errors the worker marked `retryable`
  (rate limits, 5xx, `busy`), a worker that died or is restarting.
  """
  @spec retryable?(reason()) :: boolean()
  defdelegate retryable?(reason), to: Retry

  @doc false
  # The delay before attempt n+1, in ms.
  @spec backoff(pos_integer(), keyword()) :: non_neg_integer()
  defdelegate backoff(n, policy), to: Retry
end
