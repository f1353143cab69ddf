defmodule AxonPort.Worker.Events do
  @moduledoc false
  # What a worker reports outside the protocol: `log` frames become `Logger`
  # calls, and runs emit `[:axon_port, :run, :start | :stop | :exception]`
  # through `AxonPort.Telemetry` (see that module for the events' shape).
  #
  # Internal to `AxonPort.Worker`; called in the worker process, so `self()` in
  # the event metadata is the worker.

  require Logger

  alias AxonPort.Telemetry
  alias AxonPort.Worker.Request

  @levels %{
    "debug" => :debug,
    "info" => :info,
    "warning" => :warning,
    "warn" => :warning,
    "error" => :error,
    "critical" => :critical
  }

  @doc """
  Logs a `log` frame at its level (unknown levels log at `:info`), with metadata
  `axon_port: true`, `py_logger`, `request_id` and `os_pid`.
  """
  @spec log(map(), non_neg_integer()) :: :ok
  def log(frame, os_pid) do
    level = Map.get(@levels, to_string(frame[:level]), :info)

    Logger.log(level, fn -> to_string(frame[:message]) end,
      axon_port: true,
      py_logger: frame[:logger],
      request_id: frame[:id],
      os_pid: os_pid
    )
  end

  @doc """
  Emits a run's telemetry event: `:start` (the third argument is ignored),
  `:stop` (with the run's result map) or `:exception` (with the failure reason).
  """
  @spec run(:start | :stop | :exception, Request.t(), term(), non_neg_integer()) :: :ok
  def run(:start, req, _, os_pid) do
    Telemetry.execute(
      [:axon_port, :run, :start],
      %{system_time: System.system_time(), monotonic_time: req.started},
      meta(req, os_pid)
    )
  end

  def run(:stop, req, result, os_pid) do
    usage = result.usage

    Telemetry.execute(
      [:axon_port, :run, :stop],
      %{
        duration: System.monotonic_time() - req.started,
        input_tokens: token(usage, "input_tokens"),
        output_tokens: token(usage, "output_tokens"),
        total_tokens: total_tokens(usage),
        requests: token(usage, "requests")
      },
      Map.put(meta(req, os_pid), :usage, usage)
    )
  end

  def run(:exception, req, reason, os_pid) do
    Telemetry.execute(
      [:axon_port, :run, :exception],
      %{duration: System.monotonic_time() - req.started},
      Map.merge(meta(req, os_pid), %{kind: :error, reason: reason, stacktrace: []})
    )
  end

  # pydantic-ai's RunUsage has no total_tokens field on the wire (it is a
  # property): input + output, unless the usage carries one.
  defp total_tokens(usage) do
    case usage do
      %{"total_tokens" => n} when is_integer(n) -> n
      _ -> token(usage, "input_tokens") + token(usage, "output_tokens")
    end
  end

  defp token(usage, key) when is_map(usage) do
    case Map.get(usage, key) do
      n when is_integer(n) -> n
      _ -> 0
    end
  end

  defp token(_, _), do: 0

  defp meta(req, os_pid) do
    %{
      worker: self(),
      os_pid: os_pid,
      request_id: req.id,
      ref: req.ref,
      agent: req.agent,
      stream: req.stream_to != nil
    }
  end
end
