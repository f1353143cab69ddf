defmodule AxonPort.ReliabilitySupport do
  @moduledoc false
  # Elixir tool handlers for the reliability tests, compiled into _build so
  # :peer nodes can run them too.

  @doc "A tool that tells `pid` it started, then blocks until killed."
  def block(_args, pid) do
    send(pid, {:tool_blocked, self()})
    Process.sleep(:infinity)
  end

  @doc "An inline agent spec whose only model step calls `block/2` (telling `pid`)."
  def blocking_spec(pid) do
    %{
      model: %{
        "provider" => "script",
        "responses" => [%{"tool_calls" => [%{"tool" => "block", "args" => %{}}]}, "done"]
      },
      tools: [%{name: "block", handler: {:elixir, {__MODULE__, :block, [pid]}}}]
    }
  end

  @doc """
  Sends request `frame` (id `id`) to worker `w` the way `AxonPort.Worker.request/4`
  does, with a `timeout` it cannot meet; on expiry cancels it by its ref.
  """
  def timed_out_request(w, id, frame, timeout) do
    ref = make_ref()

    try do
      GenServer.call(w, {:request, id, frame, [op: :call, ref: ref]}, timeout)
    catch
      :exit, {:timeout, _} ->
        GenServer.cast(w, {:cancel_ref, ref})
        :timed_out
    end
  end
end
