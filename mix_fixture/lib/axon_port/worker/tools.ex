defmodule AxonPort.Worker.Tools do
  @moduledoc false
  # The Elixir-tool path: a `tool_call` frame → a task under the worker's
  # `Task.Supervisor` running `AxonPort.Tool.invoke/3` → a `tool_result` frame.
  #
  # The worker GenServer never runs a tool itself. Each task is tracked twice:
  # in `state.tasks` (`task ref => {run_id, call_id}`, to route its reply or its
  # crash) and in its run's `Request.tasks` (so finishing the run terminates it,
  # see `AxonPort.Worker.Pending`).
  #
  # Internal to `AxonPort.Worker`; every function runs in the worker process and
  # takes and returns its state.

  require Logger

  alias AxonPort.Worker.{Pending, Request, Wire}

  @doc """
  Handles a `tool_call` frame: starts the run's Elixir handler for the tool in
  a supervised task, or answers at once with an error if the run has no Elixir
  handler of that name. Calls for runs no longer pending are ignored.
  """
  @spec call(map(), Pending.state()) :: Pending.state()
  def call(%{type: :tool_call, id: id, call_id: call_id} = frame, state) do
    tool = to_string(frame[:tool])

    case state.pending do
      %{^id => %Request{tools: %{^tool => handler}} = req} ->
        ctx = %{
          run_id: id,
          call_id: call_id,
          tool: tool,
          agent: req.agent,
          deps: req.deps,
          worker: self()
        }

        args = frame[:args] || %{}

        case start_task(state.task_sup, fn -> AxonPort.Tool.invoke(handler, args, ctx) end) do
          {:ok, task} ->
            state = put_in(state.tasks[task.ref], {id, call_id})
            put_in(state.pending[id].tasks[task.ref], task.pid)

          {:error, message} ->
            Logger.error("axon_port worker: Elixir tool #{tool}: #{message}")
            send_result(state, id, call_id, {:error, message, false})
            state
        end

      %{^id => _} ->
        send_result(state, id, call_id, {:error, "no Elixir handler for tool #{tool}", false})
        state

      _ ->
        state
    end
  end

  # A missing (or dead) Task.Supervisor fails the tool call, not the worker.
  defp start_task(sup, fun) do
    {:ok, Task.Supervisor.async_nolink(sup, fun)}
  catch
    :exit, reason ->
      {:error,
       "cannot run Elixir tools: Task.Supervisor #{inspect(sup)} is not running " <>
         "(#{inspect(reason, limit: 5)}); start one, or give the worker :task_supervisor " <>
         "(AxonPort.Application starts AxonPort.TaskSupervisor)"}
  end

  @doc """
  A tool task finished with `result` (or crashed: pass
  `{:error, message, false}`): sends its `tool_result` if its run is still
  pending and forgets the task.
  """
  @spec done(reference(), AxonPort.Tool.result(), Pending.state()) :: Pending.state()
  def done(task_ref, result, state) do
    {{run_id, call_id}, tasks} = Map.pop(state.tasks, task_ref)
    state = %{state | tasks: tasks}

    case state.pending do
      %{^run_id => req} ->
        send_result(state, run_id, call_id, result)
        put_in(state.pending[run_id], %{req | tasks: Map.delete(req.tasks, task_ref)})

      _ ->
        state
    end
  end

  # A value that cannot be encoded fails the call instead of the worker.
  defp send_result(state, run_id, call_id, result) do
    base = %{op: :tool_result, id: run_id, call_id: call_id}

    msg =
      case result do
        {:ok, value} -> Map.put(base, :ok, value)
        {:error, message, retry?} -> Map.merge(base, %{error: message, retry: retry?})
      end

    frame =
      try do
        Wire.encode(msg)
      rescue
        e -> Wire.encode(Map.merge(base, %{error: Exception.message(e), retry: false}))
      end

    Wire.send_frame(state, frame)
  end
end
