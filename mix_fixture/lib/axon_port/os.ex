defmodule AxonPort.OS do
  @moduledoc """
  OS-process helpers for worker lifecycles (no NIFs, no dependencies).

  On Linux, liveness is read from `/proc/<pid>/stat` (a zombie counts as exited:
  it runs no code and is reaped by the runtime's child-setup process); elsewhere
  it falls back to `kill -0`.
  """

  @doc "True while the OS process `os_pid` exists and is not a zombie."
  @spec alive?(non_neg_integer()) :: boolean()
  def alive?(os_pid) when is_integer(os_pid) and os_pid > 0 do
    if File.dir?("/proc/self") do
      case File.read("/proc/#{os_pid}/stat") do
        {:ok, stat} -> not zombie?(stat)
        {:error, _} -> false
      end
    else
      match?(
        {_, 0},
        System.cmd("kill", ["-0", Integer.to_string(os_pid)], stderr_to_stdout: true)
      )
    end
  end

  # The state field follows the parenthesised command name, which may itself
  # contain spaces or parentheses: split at the last ")".
  defp zombie?(stat) do
    case :binary.matches(stat, ")") do
      [] ->
        false

      matches ->
        {pos, _} = List.last(matches)
        String.starts_with?(binary_part(stat, pos + 1, byte_size(stat) - pos - 1), [" Z", " X"])
    end
  end

  @doc """
  Polls until `os_pid` has exited or `timeout_ms` has passed; true if it exited.
  """
  @spec wait_exit(non_neg_integer(), non_neg_integer()) :: boolean()
  def wait_exit(os_pid, timeout_ms) do
    deadline = System.monotonic_time(:millisecond) + timeout_ms
    do_wait(os_pid, deadline, 1)
  end

  defp do_wait(os_pid, deadline, backoff) do
    cond do
      not alive?(os_pid) ->
        true

      System.monotonic_time(:millisecond) >= deadline ->
        false

      true ->
        Process.sleep(backoff)
        do_wait(os_pid, deadline, min(backoff * 2, 50))
    end
  end

  @doc "Sends `signal` (default `KILL`) to `os_pid`."
  @spec kill(non_neg_integer(), String.t()) :: :ok | {:error, String.t()}
  def kill(os_pid, signal \\ "KILL") do
    case System.cmd("kill", ["-#{signal}", Integer.to_string(os_pid)], stderr_to_stdout: true) do
      {_, 0} -> :ok
      {out, _} -> {:error, String.trim(out)}
    end
  end
end
