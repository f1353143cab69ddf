defmodule AxonPort.Session do
  @moduledoc """
  One conversation: an agent, a target and the message history, kept in Elixir.

      {:ok, s} = AxonPort.Session.start_link(target: MyApp.AI, agent: "support")
      {:ok, %{output: answer}} = AxonPort.Session.chat(s, "My card is gone")
      {:ok, _} = AxonPort.Session.chat(s, "Block it, please")

  Each successful turn appends the run's new `messages` to the history, and the
  next turn sends the whole history back. The history is an `AxonPort.History`:
  each message is encoded once, when it joins, so a turn's cost in this process
  does not grow with the conversation. Because the history lives here and not
  in the Python worker, a conversation survives a worker crash and restart (and
  with a pool, may continue on any worker). A failed turn leaves the history as
  it was. Turns are serialised: a session answers one `chat/3` at a time.
  """

  use GenServer

  @type option ::
          {:target, AxonPort.target()}
          | {:agent, String.t() | atom() | map() | keyword()}
          | {:history, list() | AxonPort.History.t()}
          | {:run_opts, keyword()}
          | {:name, GenServer.name()}

  @doc """
  Starts a session. `:target` (a worker or `{:pool, name}`) and `:agent` (a
  name or inline spec) are required; `:history` seeds the conversation and
  `:run_opts` are default options for every `AxonPort.run/4` (e.g. `:deps`,
  `:timeout`, `:retry`).
  """
  @spec start_link([option()]) :: GenServer.on_start()
  def start_link(opts) do
    {gen_opts, opts} = Keyword.split(opts, [:name])
    GenServer.start_link(__MODULE__, opts, gen_opts)
  end

  @doc """
  Sends one user turn; returns the run's result (whose `messages` are this
  turn's new messages). `opts` are merged over the session's `:run_opts`.
  """
  @spec chat(GenServer.server(), String.t(), keyword()) ::
          {:ok, AxonPort.run_result()} | {:error, AxonPort.reason()}
  def chat(session, prompt, opts \\ []) do
    GenServer.call(session, {:chat, prompt, opts}, :infinity)
  end

  @doc "The conversation so far (all messages, oldest first)."
  @spec history(GenServer.server()) :: list()
  def history(session), do: GenServer.call(session, :history) |> AxonPort.History.to_list()

  @doc """
  The tool calls the last turn left waiting (its result's `deferred`), or `nil`.
  Answer them with `resume/3`.
  """
  @spec pending(GenServer.server()) :: map() | nil
  def pending(session), do: GenServer.call(session, :pending)

  @doc """
  Resumes the pending turn with decisions (`:approvals`, `:calls`, as for
  `AxonPort.resume/4`) over the session's history; the result's messages join it.
  """
  @spec resume(GenServer.server(), keyword()) ::
          {:ok, AxonPort.run_result()} | {:error, AxonPort.reason()}
  def resume(session, decisions), do: GenServer.call(session, {:resume, decisions}, :infinity)

  @doc "Forgets the conversation."
  @spec reset(GenServer.server()) :: :ok
  def reset(session), do: GenServer.call(session, :reset)

  @impl true
  def init(opts) do
    {:ok,
     %{
       target: Keyword.fetch!(opts, :target),
       agent: Keyword.fetch!(opts, :agent),
       history: to_history(Keyword.get(opts, :history, [])),
       run_opts: Keyword.get(opts, :run_opts, []),
       pending: nil
     }}
  end

  @impl true
  def handle_call({:chat, prompt, opts}, _from, state) do
    opts = state.run_opts |> Keyword.merge(opts) |> Keyword.put(:history, state.history)

    reply(AxonPort.run(state.target, state.agent, prompt, opts), state)
  end

  def handle_call({:resume, decisions}, _from, state) do
    opts = Keyword.merge(state.run_opts, decisions)
    reply(AxonPort.resume(state.target, state.agent, state.history, opts), state)
  end

  def handle_call(:pending, _from, state), do: {:reply, state.pending, state}

  def handle_call(:history, _from, state), do: {:reply, state.history, state}

  def handle_call(:reset, _from, state),
    do: {:reply, :ok, %{state | history: AxonPort.History.new(), pending: nil}}

  defp reply({:ok, result} = ok, state) do
    pending = Map.get(result, :deferred)
    history = AxonPort.History.append(state.history, result.messages)
    {:reply, ok, %{state | history: history, pending: pending}}
  end

  defp reply(error, state), do: {:reply, error, state}

  defp to_history(%AxonPort.History{} = history), do: history
  defp to_history(messages) when is_list(messages), do: AxonPort.History.new(messages)
end
