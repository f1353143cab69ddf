defmodule AxonPort.Retry do
  @moduledoc false
  # The retry policy of `AxonPort`'s request functions (`run/4`, `complete/4`,
  # `call/5`, ...): which failures are retried (`retryable?/1`), the delay
  # before each new attempt (`backoff/2`) and the loop (`with_retry/2`).
  # `AxonPort.with_retry/2`, `AxonPort.retryable?/1` and `AxonPort.backoff/2`
  # delegate here.

  alias AxonPort.Error

  @default [max_attempts: 3, base_delay: 100, max_delay: 2_000, jitter: true]

  @doc false
  # The policy `run/4` and `complete/4` use unless told otherwise.
  @spec default() :: keyword()
  def default, do: @default

  @doc false
  # Runs `fun` under a retry policy (`false` or `nil`: once).
  @spec with_retry(
          AxonPort.retry_policy() | keyword() | nil,
          (() -> {:ok, term()} | {:error, term()} | term())
        ) :: term()
  def with_retry(false, fun), do: fun.()
  def with_retry(nil, fun), do: fun.()

  def with_retry(policy, fun) when is_list(policy) do
    policy = Keyword.merge(@default, policy)
    attempt(fun, 1, policy)
  end

  defp attempt(fun, n, policy) do
    case fun.() do
      {:error, reason} = error ->
        if n < policy[:max_attempts] and retryable?(reason) do
          Process.sleep(backoff(n, policy))
          attempt(fun, n + 1, policy)
        else
          error
        end

      other ->
        other
    end
  end

  @doc false
  @spec retryable?(AxonPort.reason()) :: boolean()
  def retryable?(%Error{retryable: r}), do: r
  def retryable?({:worker_exit, _}), do: true
  def retryable?({:worker_down, _}), do: true
  def retryable?(:noproc), do: true
  def retryable?(_), do: false

  @doc false
  # The delay before attempt n+1, in ms.
  @spec backoff(pos_integer(), keyword()) :: non_neg_integer()
  def backoff(n, policy) do
    delay = min(policy[:max_delay], policy[:base_delay] * Integer.pow(2, n - 1))

    if policy[:jitter] and delay > 1 do
      half = div(delay, 2)
      half + :rand.uniform(delay - half + 1) - 1
    else
      delay
    end
  end
end
