defmodule AxonPort.OutputsTest do
  use ExUnit.Case, async: true

  import AxonPort.TestHelpers

  alias AxonPort.{Error, Worker}

  @moduletag :agents

  setup do
    %{w: start_supervised!({Worker, worker_opts([])})}
  end

  defp script(outputs),
    do: %{"provider" => "script", "responses" => Enum.map(outputs, &%{"output" => &1})}

  @result_type %{
    risk: {:integer, min: 0, max: 10},
    note: {:optional, :string},
    tier: {:enum, ["gold", "silver"]},
    reason: {:nullable, :string},
    lines: {:list, %{sku: {:string, description: "Stock keeping unit"}, qty: :integer}}
  }

  test "the shorthand's optional, enum, nullable and options forms; 8.0 arrives as 8", %{w: w} do
    out = %{
      "risk" => 8.0,
      "tier" => "gold",
      "reason" => nil,
      "lines" => [%{"sku" => "a", "qty" => 2.0}]
    }

    spec = [model: script([%{out | "risk" => 8.5}, out]), result_type: @result_type]

    assert {:ok, %{output: output}} = AxonPort.run(w, spec, "Rate")
    assert %{"risk" => 8, "tier" => "gold", "reason" => nil, "lines" => [%{"qty" => 2}]} = output
    assert is_integer(output["risk"])
    refute Map.has_key?(output, "note")

    bad = %{out | "risk" => 11, "tier" => "bronze"}

    assert {:error, %Error{kind: "validation_error", details: %{"errors" => errors}}} =
             AxonPort.run(
               w,
               [model: script([bad, bad, bad, bad]), result_type: @result_type],
               "x"
             )

    assert errors |> Enum.map(& &1["path"]) |> Enum.sort() == ["/risk", "/tier"]
  end
end
