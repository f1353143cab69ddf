defmodule SampleApp do
  @moduledoc "Runs an agent with a Python tool and an Elixir tool (pydantic-ai's test model)."

  def spec do
    [
      model: "test",
      instructions: "You sell things.",
      tools: [
        %{name: "lookup_price", handler: {:python, function: "lookup_price"}},
        %{
          name: "reserve",
          description: "Reserves an item.",
          parameters: %{
            "type" => "object",
            "properties" => %{"item" => %{"type" => "string"}},
            "required" => ["item"]
          },
          handler: {:elixir, &__MODULE__.reserve/2}
        }
      ]
    ]
  end

  @doc false
  def reserve(%{"item" => item}, _ctx), do: "elixir-reserved:#{item}:#{System.pid()}"

  @doc "Runs the agent; returns a map the packaging test checks."
  def check do
    {:ok, %{messages: messages}} =
      AxonPort.run(SampleApp.AI, "shop", "price and reserve a lamp",
        deps: %{"currency" => "EUR"},
        timeout: 30_000
      )

    text = inspect(messages)

    %{
      python_tool: text =~ "python-price:",
      elixir_tool: text =~ "elixir-reserved:",
      worker_os_pid: AxonPort.Worker.info(SampleApp.AI).os_pid,
      beam_os_pid: System.pid(),
      venv: AxonPort.Python.venv(),
      launcher: AxonPort.Python.launcher()
    }
  end
end
