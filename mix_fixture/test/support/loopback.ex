defmodule AxonPort.Loopback do
  @moduledoc """
  The loopback OpenAI-compatible server of the Python tests
  (tests/support/openai_loopback_port.py, see its module doc), run as a port:
  scripted replies in, recorded request bodies out.
  """

  import ExUnit.Assertions

  @script Path.expand("../../../tests/support/openai_loopback_port.py", __DIR__)

  @doc """
  Starts a loopback server; `%{port: port, base_url: "http://127.0.0.1:N/v1"}`.
  `start(["--anthropic"])` serves the Anthropic Messages API instead (base URL
  without `/v1`).
  """
  def start(args \\ []) do
    port =
      Port.open({:spawn_executable, AxonPort.TestHelpers.python()}, [
        :binary,
        {:packet, 4},
        :exit_status,
        args: [@script | args]
      ])

    %{"base_url" => base_url} = reply(port)
    %{port: port, base_url: base_url}
  end

  @doc "Sends one command; returns its answer."
  def command(%{port: port}, command) do
    true = Port.command(port, :erlang.term_to_binary(command))
    reply(port)
  end

  defp reply(port) do
    receive do
      {^port, {:data, bin}} -> :erlang.binary_to_term(bin)
      {^port, {:exit_status, status}} -> flunk("the loopback server exited (#{status})")
    after
      20_000 -> flunk("no answer from the loopback server")
    end
  end

  @doc "Queues scripted replies (`say/1`, `calls/1`, `answer/1`, `fail/2`)."
  def script(lb, replies), do: %{"queued" => _} = command(lb, %{"replies" => replies})

  @doc "The requests the model got since the last call: exactly `n`, every reply used."
  def served(lb, n) do
    %{"requests" => requests, "queued" => queued} = command(lb, %{"take" => true})
    assert {length(requests), queued} == {n, 0}, "model requests: #{inspect(requests)}"
    requests
  end

  @doc "Whether a Chat Completions request's messages mention `text`."
  def sent?(request, text), do: inspect(request["messages"]) =~ text

  def say(text), do: %{"text" => text}
  def calls(calls), do: %{"tool_calls" => for({name, args} <- calls, do: [name, args])}
  def answer(output), do: calls([{"final_result", output}])
  def fail(status, message), do: %{"error" => status, "message" => message}
end
