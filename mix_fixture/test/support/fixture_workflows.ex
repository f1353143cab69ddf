defmodule AxonPort.FixtureWorkflow do
  @moduledoc false
  # A workflow over the fixture tools (axon_fixture.py): one Python tool, one
  # Elixir tool, structured output, default deps.
  use AxonPort.Workflow

  agent :bank_support_agent,
    model: "test",
    system_prompt: "You are a support agent in our bank.",
    tools: [
      %{
        name: "customer_balance",
        description: "Returns the customer's current account balance.",
        handler: {:python, module: "axon_fixture", function: "customer_balance"}
      },
      %{
        name: "customer_name",
        description: "The customer's name.",
        parameters: %{"type" => "object", "properties" => %{}},
        handler: {:elixir, &__MODULE__.customer_name/2}
      }
    ],
    result_type: %{support_advice: :string, block_card: :boolean, risk: :integer},
    deps: %{"customer_id" => 123}

  def customer_name(_args, ctx), do: "John #{ctx.deps["customer_id"]}"
end
