defmodule AxonPort.Examples.Triage do
  @moduledoc """
  Two agents chained in Elixir: a triage agent classifies a customer query, and
  Elixir picks the specialist agent that answers it.

      children = [{AxonPort.Worker, name: MyApp.AI, workflows: [AxonPort.Examples.Triage]}]
      {:ok, %{department: "cards", answer: answer}} =
        AxonPort.Examples.Triage.handle(MyApp.AI, "My card was stolen")

  The hand-off is ordinary Elixir: pattern-match the triage agent's structured
  output, choose the next agent, build its prompt. Nothing about the routing
  lives in Python. The model is `AXON_PORT_MODEL` when set (e.g.
  `"openai-chat:gpt-4o"`), else pydantic-ai's `"test"` model.
  """

  use AxonPort.Workflow

  @departments ~w(cards loans general)

  agent :triage,
    model: System.get_env("AXON_PORT_MODEL", "test"),
    instructions:
      "Classify the customer's query. department is one of: cards, loans, general. " <>
        "urgency is 1 (low) to 5 (urgent).",
    result_type: %{department: :string, urgency: :integer}

  agent :cards_specialist,
    model: System.get_env("AXON_PORT_MODEL", "test"),
    instructions: "You are the bank's card specialist. Answer briefly and concretely."

  agent :loans_specialist,
    model: System.get_env("AXON_PORT_MODEL", "test"),
    instructions: "You are the bank's loans specialist. Answer briefly and concretely."

  agent :general_specialist,
    model: System.get_env("AXON_PORT_MODEL", "test"),
    instructions: "You are the bank's front desk. Answer briefly and kindly."

  @doc "The departments the triage agent may choose (anything else goes to `general`)."
  @spec departments() :: [String.t()]
  def departments, do: @departments

  @doc """
  Triage `query`, then answer it with the matching specialist. Returns the
  department, the specialist's answer and the raw triage output.
  """
  @spec handle(AxonPort.target(), String.t(), keyword()) ::
          {:ok, %{department: String.t(), answer: term(), triage: map()}}
          | {:error, AxonPort.reason()}
  def handle(target, query, opts \\ []) do
    with {:ok, %{output: %{"department" => dept, "urgency" => urgency} = triage}} <-
           run(target, :triage, query, opts),
         dept = if(dept in @departments, do: dept, else: "general"),
         prompt = "Urgency #{urgency}/5. Customer query: #{query}",
         {:ok, %{output: answer}} <- run(target, specialist(dept), prompt, opts) do
      {:ok, %{department: dept, answer: answer, triage: triage}}
    end
  end

  defp specialist("cards"), do: :cards_specialist
  defp specialist("loans"), do: :loans_specialist
  defp specialist(_), do: :general_specialist
end
