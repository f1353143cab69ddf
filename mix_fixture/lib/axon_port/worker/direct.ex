defmodule AxonPort.Worker.Direct do
  @moduledoc false
  # The direct path of simple requests (`call`, `ping`, `describe`, `stats`,
  # `set_log_level`) from a caller on the worker's node: the caller takes an id
  # from the worker's counter, registers `{id, {caller, tag}}` in the
  # worker's public ETS table, encodes its own frame and writes it to the port
  # (`Port.command/2` from a non-owner process); the worker GenServer, still
  # the port's owner, only looks the reply's id up and sends it on. No
  # GenServer call per request.
  #
  # Exactly one answer per caller: whoever `:ets.take/2`s the entry first — the
  # router with a reply, the worker failing all on exit, its heir when it died
  # (`AxonPort.Worker.Heir`, which makes a death `{:worker_down, reason}`), the
  # caller on its timeout — answers. The caller does not monitor the worker:
  # that would be two signals waking the worker on every call. A caller that timed out and took its entry sends
  # `cancel` for its own id (ids are unique per worker, so the cancel names its
  # request). Slow-path requests reserve their id in the same table as
  # `{id, :slow}`, so the two never collide.
  #
  # The reply hop is kept short (`forward/3`): the worker peeks a terminal
  # frame's id from its first bytes (`peek/1`; the Python encoder writes a
  # frame's `type` and `id` keys first), `:ets.take/2`s the entry and sends the
  # caller the raw frame as `{tag, :frame, bin}`. The caller decodes it (`[:safe]`) and
  # checks it (`AxonPort.Worker.Frames.terminal/2`) in its own process. A frame
  # whose bytes do not match the pattern takes the worker's full decode
  # (`AxonPort.Worker.Frames.handle_data/2`), as does every frame of the
  # GenServer path. A routed frame that turns out malformed answers its caller
  # with what the worker's protocol error would have, and the caller reports it
  # to the worker (`{AxonPort.Worker.Direct, :protocol_error, detail, id}`),
  # which then logs it, fails every other caller and stops as for any protocol
  # error; frames the worker routed meanwhile were each checked by their own
  # caller. The caller's demonitor skips the mailbox scan of `[:flush]` when
  # the monitor had not fired.
  #
  # The route `{port, table, counter, max_frame}` is published in
  # `:persistent_term` under `{AxonPort.Worker, pid}` once the worker is ready.

  alias AxonPort.Error
  alias AxonPort.Worker.{Frames, Heir, Wire}

  @ops [:call, :ping, :describe, :stats, :set_log_level]

  @type route :: {port(), :ets.tid(), :atomics.atomics_ref(), pos_integer() | nil}

  @doc false
  @spec ops() :: [atom()]
  def ops, do: @ops

  @doc false
  # True for the ops of the direct path.
  @spec op?(term()) :: boolean()
  def op?(op) when op in @ops, do: true
  def op?(_op), do: false

  @doc false
  @spec route(pid()) :: route() | nil
  def route(pid) when node(pid) == node(), do: :persistent_term.get({AxonPort.Worker, pid}, nil)
  def route(_pid), do: nil

  @doc false
  @spec publish(pid(), route()) :: :ok
  def publish(pid, route), do: :persistent_term.put({AxonPort.Worker, pid}, route)

  @doc false
  @spec unpublish(pid()) :: :ok
  def unpublish(pid) do
    _ = :persistent_term.erase({AxonPort.Worker, pid})
    :ok
  end

  @doc false
  # A fresh id, unique on this worker, registered to `value` in its table.
  @spec reserve(:ets.tid(), :atomics.atomics_ref(), term()) :: pos_integer()
  def reserve(tab, ctr, value) do
    id = :atomics.add_get(ctr, 1, 1)
    if :ets.insert_new(tab, {id, value}), do: id, else: reserve(tab, ctr, value)
  end

  @doc false
  @spec request(pid(), route(), map(), timeout()) :: {:ok, term()} | :ok | {:error, term()}
  def request(pid, {port, tab, ctr, max_frame}, payload, timeout) do
    tag = make_ref()

    case reserve_or_down(tab, ctr, tag) do
      {:ok, id} ->
        # Checked after our entry is in (see AxonPort.Worker.Heir): a worker that
        # died meanwhile has its table marked, and then we answer ourselves unless
        # the heir already took our entry to answer it.
        case Heir.closed(tab) do
          nil -> send_and_await(pid, port, tab, max_frame, payload, id, tag, timeout)
          reason -> answer_down(pid, tab, id, tag, reason)
        end

      :down ->
        {:error, {:worker_down, :noproc}}
    end
  end

  defp answer_down(pid, tab, id, tag, reason) do
    case :ets.take(tab, id) do
      [_] -> {:error, {:worker_down, reason}}
      [] -> await_answer(pid, id, tag)
    end
  rescue
    ArgumentError -> {:error, {:worker_down, reason}}
  end

  defp reserve_or_down(tab, ctr, tag) do
    {:ok, reserve(tab, ctr, {self(), tag})}
  rescue
    ArgumentError -> :down
  end

  defp send_and_await(pid, port, tab, max_frame, payload, id, tag, timeout) do
    frame = :erlang.term_to_binary(Map.put(payload, :id, id))

    cond do
      max_frame != nil and byte_size(frame) > max_frame ->
        :ets.delete(tab, id)

        {:error,
         %Error{
           kind: "bad_frame",
           message:
             "request of #{byte_size(frame)} bytes exceeds the worker's max_frame (#{max_frame})"
         }}

      command(port, frame) ->
        await(pid, port, tab, id, tag, timeout)

      true ->
        # The port is closed: the worker is going down, and it or its heir answers.
        await(pid, port, tab, id, tag, :infinity)
    end
  end

  # The answer comes from whoever takes our entry: the worker with the reply,
  # the worker failing all on its way out, its heir when it died, or we on our
  # timeout.
  defp await(pid, port, tab, id, tag, timeout) do
    receive do
      {^tag, :frame, bin} -> decode_reply(pid, bin, id)
      {^tag, reply} -> reply
    after
      timeout ->
        case take(tab, id) do
          [_] ->
            command(port, Wire.encode(%{op: :cancel, target: id}))

            {:error,
             %Error{kind: "timeout", message: "no reply within #{timeout} ms; request cancelled"}}

          [] ->
            # The answer is already on its way.
            await_answer(pid, id, tag)
        end
    end
  end

  defp await_answer(pid, id, tag) do
    receive do
      {^tag, :frame, bin} -> decode_reply(pid, bin, id)
      {^tag, reply} -> reply
    end
  end

  defp take(tab, id) do
    :ets.take(tab, id)
  rescue
    # The table is gone (its worker died 5 s ago): our entry went with it.
    ArgumentError -> [:gone]
  end

  # The terminal frame the worker forwarded to us undecoded (see forward/3).
  defp decode_reply(pid, bin, id) do
    case Frames.terminal(bin, id) do
      {:ok, reply} ->
        reply

      {:protocol_error, detail, reply} ->
        send(pid, {__MODULE__, :protocol_error, detail, id})
        reply
    end
  end

  defp command(port, frame) do
    :erlang.port_command(port, frame)
  rescue
    ArgumentError -> false
  end

  @doc false
  # The id of a terminal frame (`result`, `error`, `pong`) read from its first
  # bytes as the worker's encoder writes them — a map whose first keys are the
  # atoms `type` and `id`, an integer id — or nil. Only a shortcut for
  # routing: the frame is still decoded and checked in full by its receiver.
  @spec peek(binary()) :: non_neg_integer() | nil
  def peek(<<131, 116, _n::32, 119, 4, "type", 119, 6, "result", 119, 2, "id", rest::binary>>),
    do: peek_id(rest)

  def peek(<<131, 116, _n::32, 119, 4, "type", 119, 5, "error", 119, 2, "id", rest::binary>>),
    do: peek_id(rest)

  def peek(<<131, 116, _n::32, 119, 4, "type", 119, 4, "pong", 119, 2, "id", rest::binary>>),
    do: peek_id(rest)

  def peek(_bin), do: nil

  # SMALL_INTEGER_EXT, INTEGER_EXT, a positive SMALL_BIG_EXT (ids are positive).
  defp peek_id(<<97, id, _::binary>>), do: id
  defp peek_id(<<98, id::signed-32, _::binary>>) when id > 0, do: id

  defp peek_id(<<110, n, 0, digits::binary-size(n), _::binary>>),
    do: :binary.decode_unsigned(digits, :little)

  defp peek_id(_), do: nil

  @doc false
  # In the worker: sends a terminal frame, undecoded, to the direct caller
  # waiting for the id it names (`peek/1`). Returns false — the frame is then
  # decoded and handled by the worker as before — if its bytes do not name an
  # id that way, or no direct caller waits for it (a GenServer-path request,
  # or none at all).
  @spec forward(binary(), :ets.tid(), map()) :: boolean()
  def forward(bin, tab, pending) do
    case peek(bin) do
      nil ->
        false

      id when is_map_key(pending, id) ->
        false

      id ->
        hand_over(tab, id, fn tag -> {tag, :frame, bin} end)
    end
  end

  @doc false
  # In the worker: sends a terminal frame's reply to its direct caller. Returns
  # false if no direct caller waits for `id`.
  @spec deliver(:ets.tid(), integer(), term()) :: boolean()
  def deliver(tab, id, reply), do: hand_over(tab, id, fn tag -> {tag, reply} end)

  # Takes the direct caller's entry for `id` and sends it `message.(tag)`; whoever
  # takes the entry first answers (see the moduledoc). False if no direct caller
  # waits for `id`.
  defp hand_over(tab, id, message) do
    case :ets.take(tab, id) do
      [{^id, {pid, tag}}] ->
        send(pid, message.(tag))
        true

      [{^id, :slow} = entry] ->
        # Not ours (the GenServer path's reservation): put it back.
        :ets.insert(tab, entry)
        false

      [] ->
        false
    end
  end

  @doc false
  # In the worker, at its end: answers every direct caller with `reply`.
  @spec fail_all(:ets.tid(), term()) :: :ok
  def fail_all(tab, reply) do
    for {id, {pid, tag}} <- :ets.tab2list(tab) do
      case :ets.take(tab, id) do
        [_] -> send(pid, {tag, reply})
        [] -> :ok
      end
    end

    :ok
  end

  @doc false
  @spec reply(map()) :: :ok | {:ok, term()} | {:error, Error.t()}
  def reply(%{type: :pong}), do: :ok
  def reply(%{type: :error, error: err}), do: {:error, Error.from_wire(err)}
  def reply(%{type: :result} = frame), do: {:ok, frame[:output]}
end
