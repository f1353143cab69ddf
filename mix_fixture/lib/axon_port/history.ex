defmodule AxonPort.History do
  @moduledoc """
  A conversation's messages, kept encoded: what to pass as `:history` when the
  conversation is long.

      history = AxonPort.History.new()
      {:ok, r1} = AxonPort.run(MyApp.AI, "support", "My card is gone", history: history)
      history = AxonPort.History.append(history, r1.messages)
      {:ok, r2} = AxonPort.run(MyApp.AI, "support", "Block it, please", history: history)

  A plain list of messages works too, but every run then encodes the whole
  conversation again in the caller (~1 ms per 1000 messages) and leaves a
  frame-sized binary behind, which makes a caller holding a long history
  garbage-collect its heap more. A `History` encodes each message once, when it
  is appended (`:erlang.term_to_binary/1`, so the worker sees the very bytes it
  caches validated messages by), and a run's frame is spliced from those
  binaries without encoding or copying them. `AxonPort.Session` keeps its
  conversation this way.

  The struct is opaque; use `new/1`, `append/2`, `size/1` and `to_list/1`.
  """

  @enforce_keys [:encoded, :count]
  defstruct encoded: [], count: 0

  @typedoc "Encoded messages, oldest first (an iolist of each message's ETF without the version byte)."
  @type t :: %__MODULE__{encoded: iodata(), count: non_neg_integer()}

  @doc "A history of `messages` (default: none)."
  @spec new([map()]) :: t()
  def new(messages \\ []), do: append(%__MODULE__{encoded: [], count: 0}, messages)

  @doc "`history` followed by `messages` (e.g. a run result's `messages`); each is encoded once, here."
  @spec append(t(), [map()]) :: t()
  def append(%__MODULE__{encoded: enc, count: n}, messages) when is_list(messages) do
    {new, k} =
      Enum.map_reduce(messages, 0, fn m, k ->
        <<131, bin::binary>> = :erlang.term_to_binary(m)
        {bin, k + 1}
      end)

    %__MODULE__{encoded: [enc | new], count: n + k}
  end

  @doc "The number of messages."
  @spec size(t()) :: non_neg_integer()
  def size(%__MODULE__{count: n}), do: n

  @doc "The messages, decoded (oldest first)."
  @spec to_list(t()) :: [map()]
  def to_list(%__MODULE__{encoded: enc}) do
    enc |> List.flatten() |> Enum.map(fn bin -> :erlang.binary_to_term(<<131, bin::binary>>) end)
  end

  @doc false
  # The ETF of the list, without the version byte: LIST_EXT, the messages, NIL_EXT.
  @spec list_iodata(t()) :: iodata()
  def list_iodata(%__MODULE__{count: 0}), do: <<106>>
  def list_iodata(%__MODULE__{encoded: enc, count: n}), do: [<<108, n::32>>, enc, <<106>>]
end
