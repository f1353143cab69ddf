defmodule AxonPort.Workflow do
  @moduledoc """
  A DSL to declare agents in Elixir, after the design discussion's `Axon.Workflow`.

      defmodule MyApp.Support do
        use AxonPort.Workflow

        agent :bank_support_agent,
          model: "openai-chat:gpt-4o",
          system_prompt: "You are a support agent in our bank...",
          tools: [
            %{name: "customer_balance", description: "The customer's balance.",
              handler: {:python, module: "bank_support", function: "customer_balance"}},
            %{name: "block_card", description: "Blocks the customer's card.",
              parameters: %{"type" => "object", "properties" => %{"reason" => %{"type" => "string"}}},
              handler: {:elixir, &MyApp.Cards.block/2}}
          ],
          result_type: %{support_advice: :string, block_card: :boolean, risk: :integer},
          deps: %{customer_id: 123}
      end

  The options of `agent/2` are those of `AxonPort.Spec` (model, system_prompt /
  instructions, tools with handlers, result_type / output_schema, retries,
  deps, ...). They are *evaluated at run time*, each time `__agents__/0` is
  called, so they may hold anonymous functions and read the environment
  (`model: {:system, "MY_MODEL"}`).

  A workflow's agents are defined on a worker when it starts — and again after
  every restart — by listing the module in the worker's (or pool's) options:
  `AxonPort.Worker.start_link(workflows: [MyApp.Support])`. A `{:python, ...}`
  handler names a tool the worker registered (its `--module`s); it never
  makes the worker import anything.

  The module also gets `run/4` and `stream/4`, which call `AxonPort.run/4` and
  `AxonPort.stream/4` with the agent's name — write the workflow itself (which
  agent runs next, with what) as ordinary Elixir functions in the module.
  """

  @doc false
  defmacro __using__(_opts) do
    quote do
      import AxonPort.Workflow, only: [agent: 2]
      Module.register_attribute(__MODULE__, :axon_port_agents, accumulate: true)
      @before_compile AxonPort.Workflow

      @doc "Runs one of this workflow's agents (see `AxonPort.run/4`)."
      @spec run(AxonPort.target(), atom(), String.t(), keyword()) ::
              {:ok, AxonPort.run_result()} | {:error, AxonPort.reason()}
      def run(target, agent, prompt, opts \\ []) when is_atom(agent) do
        AxonPort.Workflow.__check_agent__(__MODULE__, agent)
        AxonPort.run(target, agent, prompt, opts)
      end

      @doc "Streams one of this workflow's agents (see `AxonPort.stream/4`)."
      @spec stream(AxonPort.target(), atom(), String.t(), keyword()) ::
              {:ok, {pid(), reference()}} | {:error, AxonPort.reason()}
      def stream(target, agent, prompt, opts \\ []) when is_atom(agent) do
        AxonPort.Workflow.__check_agent__(__MODULE__, agent)
        AxonPort.stream(target, agent, prompt, opts)
      end
    end
  end

  @doc """
  Declares an agent named `name` (an atom; its wire name is the atom's text).
  """
  defmacro agent(name, opts) when is_atom(name) do
    quote do
      @axon_port_agents {unquote(name), unquote(Macro.escape(opts))}
    end
  end

  defmacro agent(name, _opts) do
    raise ArgumentError, "agent name must be an atom literal, got: #{Macro.to_string(name)}"
  end

  @doc false
  defmacro __before_compile__(env) do
    agents = env.module |> Module.get_attribute(:axon_port_agents) |> Enum.reverse()
    names = Enum.map(agents, &elem(&1, 0))

    case names -- Enum.uniq(names) do
      [] -> :ok
      dups -> raise CompileError, description: "duplicate agent names: #{inspect(dups)}"
    end

    entries = for {name, opts_ast} <- agents, do: quote(do: {unquote(name), unquote(opts_ast)})

    quote do
      @doc "This workflow's agents as `[{name, spec}]`, evaluated now."
      @spec __agents__() :: [{atom(), keyword() | map()}]
      def __agents__, do: unquote(entries)

      @doc false
      def __agent_names__, do: unquote(names)
    end
  end

  @doc false
  def __check_agent__(module, agent) do
    unless agent in module.__agent_names__() do
      raise ArgumentError, "#{inspect(module)} has no agent #{inspect(agent)}"
    end
  end
end
