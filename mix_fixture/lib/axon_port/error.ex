defmodule AxonPort.Error do
  @moduledoc """
  An error reported by the worker (an `error` frame), or produced by the client
  for a request that never reached it (e.g. a caller timeout).

  `kind` is the protocol's binary error kind (`"timeout"`, `"cancelled"`,
  `"validation_error"`, `"model_http_error"`, `"busy"`, ...); `details` is
  whatever the worker attached (binary keys), `retryable` says whether the same
  request may succeed if sent again — the retry policy of `AxonPort.run/4` only
  re-runs errors that say so.
  """

  defexception kind: "internal", message: "", details: nil, retryable: false

  @type t :: %__MODULE__{
          kind: String.t(),
          message: String.t(),
          details: term(),
          retryable: boolean()
        }

  @doc "Builds an error from the `error` map of an `error` frame."
  @spec from_wire(map()) :: t()
  def from_wire(%{} = err) do
    %__MODULE__{
      kind: to_string(Map.get(err, "kind", "internal")),
      message: to_string(Map.get(err, "message", "")),
      details: Map.get(err, "details"),
      retryable: Map.get(err, "retryable", false) == true
    }
  end

  def from_wire(other),
    do: %__MODULE__{kind: "internal", message: "malformed error: #{inspect(other)}"}

  @impl true
  def message(%__MODULE__{kind: kind, message: msg}), do: "#{kind}: #{msg}"
end
