defmodule AxonPort.ExamplesTest do
  use ExUnit.Case, async: true

  import AxonPort.TestHelpers

  alias AxonPort.Examples.BankSupport

  @moduletag :agents
  @moduletag :bank_example

  test "the bank-support workflow runs over the shipped Python example module" do
    w =
      start_supervised!(
        {AxonPort.Worker,
         worker_opts(
           modules: ["axon_port.examples.bank_support"],
           workflows: [BankSupport]
         )}
      )

    assert {:ok, %{output: output, messages: messages}} =
             BankSupport.support(w, 123, "I just lost my card!")

    assert %{"support_advice" => advice, "block_card" => block?, "risk" => risk} = output
    assert is_binary(advice) and is_boolean(block?) and is_integer(risk)
    # TestModel calls every tool once: the Python balance and the Elixir block_card.
    text = inspect(messages)
    assert text =~ "customer_balance"
    # customer 123's balance from the example's fake database, via deps
    assert text =~ "$123.45" or text =~ "$148.45"
    assert text =~ "blocked"
  end

  test "the Python-registered bank_support agent runs by name with deps from Elixir" do
    w =
      start_supervised!(
        {AxonPort.Worker, worker_opts(modules: ["axon_port.examples.bank_support"])}
      )

    assert {:ok, %{output: %{"risk" => risk}, messages: messages}} =
             AxonPort.run(w, "bank_support", "What is my balance?", deps: %{customer_id: 7})

    assert is_integer(risk)
    assert inspect(messages) =~ "$9000.00" or inspect(messages) =~ "$9025.00"
  end
end
