# Tests tagged :agents need the pydantic-ai layer of the worker; run only those
# with `mix test --only agents`, or skip them with `mix test --exclude agents`.
ExUnit.start(capture_log: true)
