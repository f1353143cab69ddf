defmodule AxonPort.PythonConfigTest do
  # Run-time resolution of the launcher and the venv. Sync: it changes the
  # :axon_port application environment (async modules have all finished).
  use ExUnit.Case, async: false

  alias AxonPort.Python

  setup do
    saved = Application.get_all_env(:axon_port)

    on_exit(fn ->
      for {k, _} <- Application.get_all_env(:axon_port), do: Application.delete_env(:axon_port, k)
      Application.put_all_env(axon_port: saved)
    end)
  end

  test "the launcher is the package's priv/axon_port, found at run time" do
    Application.delete_env(:axon_port, :launcher)
    assert Python.launcher() == Path.join(:code.priv_dir(:axon_port), "axon_port")
    assert File.regular?(Python.launcher())
    Application.put_env(:axon_port, :launcher, "/opt/x/axon_port")
    assert Python.launcher() == "/opt/x/axon_port"
  end

  test "an absolute venv is used as is and reaches the launcher as AXON_PORT_VENV" do
    Application.put_env(:axon_port, :python, venv: "/srv/venv")
    assert Python.venv() == "/srv/venv"
    assert Python.launcher_env() == [{"AXON_PORT_VENV", "/srv/venv"}]
  end

  test "a relative venv is under the priv dir of :otp_app" do
    Application.put_env(:axon_port, :python, otp_app: :axon_port, venv: "py")
    assert Python.venv() == Path.join(:code.priv_dir(:axon_port), "py")
  end

  test "without :otp_app, the loaded application whose priv holds a stamped venv" do
    Application.put_env(:axon_port, :python, venv: "no_such_venv_here")
    assert Python.venv() == nil
    assert Python.launcher_env() == []

    rel = "scan_venv_#{System.unique_integer([:positive])}"
    dir = Path.join(:code.priv_dir(:axon_port), rel)
    File.mkdir_p!(dir)

    try do
      Application.put_env(:axon_port, :python, venv: rel)
      # not made by mix axon_port.setup (no stamp): not picked
      assert Python.venv() == nil
      File.write!(Path.join(dir, Python.stamp_file()), "x")
      assert Python.venv() == dir
    after
      File.rm_rf!(dir)
    end
  end

  test "an unknown python option is a clear error" do
    Application.put_env(:axon_port, :python, extra: [:anthropic])
    assert_raise ArgumentError, ~r/unknown keys \[:extra\]/, fn -> Python.config() end
  end
end
