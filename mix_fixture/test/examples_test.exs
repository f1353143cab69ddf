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
    assert text =~ "blocked"
  end
end
