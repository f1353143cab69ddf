# Tests tagged :agents need the pydantic-ai layer of the worker; run only those
# with `mix test --only agents`, or skip them with `mix test --exclude agents`.
#
# :bank_example needs the Python example module axon_port.examples.bank_support;
# it is excluded (with a note) when the worker's Python cannot import it.
{_, status} =
  System.cmd(
    AxonPort.TestHelpers.python(),
    ["-c", "import axon_port.examples.bank_support"],
    stderr_to_stdout: true
  )

exclude =
  if status == 0 do
    []
  else
    IO.puts("note: axon_port.examples.bank_support not importable; excluding :bank_example")
    [:bank_example]
  end

ExUnit.start(capture_log: true, exclude: exclude)
