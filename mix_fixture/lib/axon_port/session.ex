defmodule AxonPort.Session do
  @moduledoc """
  One conversation: an agent, a target and the message history, kept in Elixir.

      {:ok, s} = AxonPort.Session.start_link(target: MyApp.AI, agent: "support")
      {:ok, %{output: answer}} = AxonPort.Session.chat(s, "My card is gone")
      {:ok, _} = AxonPort.Session.chat(s, "Block it, please")

  Each successful turn appends the run's new `messages` to the history, and the
  next turn sends the whole history back. Because the history lives here and not
  in the Python worker, a conversation survives a worker crash and restart (and
  with a pool, may continue on any worker). A failed turn leaves the history as
  it was. Turns are serialised: a session answers one `chat/3` at a time.
  """

  use GenServer

  @type option ::
          {:target, AxonPort.target()}
          | {:agent, String.t() | atom() | map() | keyword()}
          | {:history, list()}
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
  def history(session), do: GenServer.call(session, :history)

  @doc "Forgets the conversation."
  @spec reset(GenServer.server()) :: :ok
  def reset(session), do: GenServer.call(session, :reset)

  @impl true
  def init(opts) do
    {:ok,
     %{
       target: Keyword.fetch!(opts, :target),
       agent: Keyword.fetch!(opts, :agent),
       history: Keyword.get(opts, :history, []),
       run_opts: Keyword.get(opts, :run_opts, [])
     }}
  end

  @impl true
  def handle_call({:chat, prompt, opts}, _from, state) do
    opts = state.run_opts |> Keyword.merge(opts) |> Keyword.put(:history, state.history)

    case AxonPort.run(state.target, state.agent, prompt, opts) do
      {:ok, result} = ok ->
        {:reply, ok, %{state | history: state.history ++ result.messages}}

      error ->
        {:reply, error, state}
    end
  end

  def handle_call(:history, _from, state), do: {:reply, state.history, state}
  def handle_call(:reset, _from, state), do: {:reply, :ok, %{state | history: []}}
end
