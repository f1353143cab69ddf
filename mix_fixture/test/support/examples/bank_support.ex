defmodule AxonPort.Examples.BankSupport do
  @moduledoc """
  The design discussion's bank-support agent, declared in Elixir.

  The balance lookup is a Python tool (`customer_balance`, registered by the
  worker module `axon_port.examples.bank_support`); blocking a card is an
  Elixir tool. Start a worker with both:

      {AxonPort.Worker,
       name: MyApp.AI,
       modules: ["axon_port.examples.bank_support"],
       workflows: [AxonPort.Examples.BankSupport]}

      {:ok, %{output: %{"support_advice" => advice, "block_card" => block?, "risk" => risk}}} =
        AxonPort.Examples.BankSupport.support(MyApp.AI, 123, "I just lost my card!")

  The model is `AXON_PORT_MODEL` when set, else pydantic-ai's `"test"` model.
  """

  use AxonPort.Workflow

  agent :bank_support_agent,
    model: System.get_env("AXON_PORT_MODEL", "test"),
    system_prompt:
      "You are a support agent in our bank, give the customer support " <>
        "and judge the risk level of their query. Reply using the customer's name.",
    tools: [
      %{
        name: "customer_balance",
        description: "Returns the customer's current account balance.",
        handler:
          {:python, module: "axon_port.examples.bank_support", function: "customer_balance"}
      },
      %{
        name: "block_card",
        description: "Blocks the customer's card. Use only when the card is lost or stolen.",
        parameters: %{
          "type" => "object",
          "properties" => %{"reason" => %{"type" => "string"}},
          "required" => ["reason"]
        },
        handler: {:elixir, &__MODULE__.block_card/2}
      }
    ],
    result_type: %{support_advice: :string, block_card: :boolean, risk: :integer},
    deps: %{"customer_id" => 123}

  @doc "Asks the bank-support agent about `customer_id`'s `query`."
  @spec support(AxonPort.target(), integer(), String.t(), keyword()) ::
          {:ok, AxonPort.run_result()} | {:error, AxonPort.reason()}
  def support(target, customer_id, query, opts \\ []) do
    run(
      target,
      :bank_support_agent,
      query,
      Keyword.put(opts, :deps, %{"customer_id" => customer_id})
    )
  end

  @doc false
  # The Elixir tool: a real app would call its card service here.
  def block_card(%{"reason" => reason}, %{deps: deps}) do
    require Logger
    Logger.info("blocking the card of customer #{deps["customer_id"]}: #{reason}")
    %{"blocked" => true, "customer_id" => deps["customer_id"]}
  end
end
