defmodule AxonPort.DirectReplyTest do
  # The direct path's reply hop, without a worker: the worker peeks a terminal
  # frame's id from its first bytes (Direct.peek/1) and the caller decodes and
  # checks the frame itself (Frames.terminal/2).
  use ExUnit.Case, async: true

  alias AxonPort.Error
  alias AxonPort.Worker.{Direct, Frames}

  # A frame as the worker's encoder writes it: a map, atom keys in the given
  # order (SMALL_ATOM_UTF8_EXT), the `type` value an atom, the rest ETF.
  defp py_frame(pairs) do
    body =
      for {k, v} <- pairs, into: <<>> do
        key = Atom.to_string(k)

        val =
          if k == :type,
            do: <<119, byte_size(Atom.to_string(v))>> <> Atom.to_string(v),
            else: etf(v)

        <<119, byte_size(key)>> <> key <> val
      end

    <<131, 116, length(pairs)::32>> <> body
  end

  defp etf(term),
    do: binary_part(:erlang.term_to_binary(term), 1, byte_size(:erlang.term_to_binary(term)) - 1)

  setup_all do
    _ = AxonPort.Protocol.frame_atoms()
    :ok
  end

  test "peek reads the id of result, error and pong frames as the worker writes them" do
    # docs/protocol.md's pong reply, byte for byte.
    assert Direct.peek(Base.decode16!("8374000000027704747970657704706F6E67770269646101")) == 1

    for id <- [1, 255, 256, 70_000, 2_147_483_647, 2_147_483_648, 2 ** 70] do
      assert Direct.peek(py_frame(type: :result, id: id, output: 3)) == id
      assert Direct.peek(py_frame(type: :pong, id: id)) == id
      assert Direct.peek(py_frame(type: :error, id: id, error: %{"kind" => "x"})) == id
    end
  end

  test "peek gives nil for anything else (the worker then decodes the frame itself)" do
    for bin <- [
          py_frame(type: :chunk, id: 1, event: "x"),
          py_frame(type: :log, id: 1, level: "info", message: "m"),
          py_frame(id: 1, type: :result, output: 3),
          py_frame(type: :result, output: 3),
          py_frame(type: :result, id: nil),
          py_frame(type: :result, id: -5),
          py_frame(type: :result, id: "1"),
          # Erlang's own encoding of the map sorts its keys: id comes first.
          :erlang.term_to_binary(%{type: :result, id: 1, output: 3}),
          :erlang.term_to_binary({:result, 1}),
          <<131, 116, 0, 0>>,
          <<>>
        ] do
      assert Direct.peek(bin) == nil, inspect(bin)
    end
  end

  test "terminal gives the reply the worker's own decoding gives" do
    assert Frames.terminal(py_frame(type: :result, id: 7, output: 3), 7) == {:ok, {:ok, 3}}
    assert Frames.terminal(py_frame(type: :pong, id: 7), 7) == {:ok, :ok}

    assert {:ok, {:ok, %{"a" => [1]}}} =
             Frames.terminal(
               py_frame(type: :result, id: 7, output: %{"a" => [1]}, elapsed_ms: 0.5, usage: %{}),
               7
             )

    err = %{"kind" => "not_found", "message" => "no function", "retryable" => false}

    assert {:ok, {:error, %Error{kind: "not_found", message: "no function"}}} =
             Frames.terminal(py_frame(type: :error, id: 7, error: err), 7)
  end

  test "a malformed frame is a protocol error, answered as the worker's protocol error would" do
    # Decodable, naming the request: a protocol_error for it.
    for bin <- [
          py_frame(type: :result, id: 7, output: 1, usage: "not a map"),
          py_frame(type: :error, id: 7, error: %{"kind" => %{"x" => 1}}),
          py_frame(type: :error, id: 7, error: "not a map")
        ] do
      assert {:protocol_error, detail, {:error, %Error{kind: "protocol_error", message: detail}}} =
               Frames.terminal(bin, 7)
    end

    # Undecodable (an atom the client does not know, truncated bytes): the
    # worker would not know the id either, so {:worker_exit, {:protocol_error, _}}.
    unknown_atom =
      <<131, 116, 3::32, 119, 4, "type", 119, 6, "result", 119, 2, "id", 97, 7, 119, 16,
        "no_such_atom_zz9", 97, 1>>

    for bin <- [unknown_atom, binary_part(py_frame(type: :result, id: 7, output: "abc"), 0, 30)] do
      assert {:protocol_error, detail, {:error, {:worker_exit, {:protocol_error, detail}}}} =
               Frames.terminal(bin, 7)
    end
  end

  test "a frame that decodes as another request's or as no terminal frame is a protocol error" do
    assert {:protocol_error, _, {:error, %Error{kind: "protocol_error"}}} =
             Frames.terminal(py_frame(type: :result, id: 8, output: 1), 7)
  end
end
