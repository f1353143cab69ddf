# Writes tests/data/etf_golden.json: real `:erlang.term_to_binary/2` bytes for named
# terms, with a JSON description of the Python value axon_port must decode them to.
#
#   elixir scripts/gen_etf_golden.exs            # regenerate the data file
#   elixir scripts/gen_etf_golden.exs --verify   # also check that Erlang decodes OUR
#                                                # encoding of each case to the same term
#
# Description format (unambiguous): JSON null/true/false = nil/true/false; JSON integer =
# int (any size); JSON string = str (a UTF-8 binary); JSON array = list;
# {"atom": name}, {"bytes_hex": hex}, {"float": repr}, {"tuple": [...]}, {"map": [[k, v], ...]}.
# Variants: "default" (OTP 25 defaults: latin-1 atoms as ATOM_EXT), "compressed",
# "minor2" (UTF-8 atom tags, the bytes our encoder writes when "canonical" is true),
# and "minor0" for floats (old FLOAT_EXT text form).

defmodule Golden do
  def describe(nil), do: nil
  def describe(true), do: true
  def describe(false), do: false
  def describe(a) when is_atom(a), do: %{"atom" => Atom.to_string(a)}
  def describe(i) when is_integer(i), do: i
  def describe(f) when is_float(f), do: %{"float" => :erlang.float_to_binary(f, [:short])}

  def describe(b) when is_binary(b) do
    if String.valid?(b), do: b, else: %{"bytes_hex" => Base.encode16(b, case: :lower)}
  end

  def describe(l) when is_list(l), do: Enum.map(l, &describe/1)
  def describe(t) when is_tuple(t), do: %{"tuple" => Enum.map(Tuple.to_list(t), &describe/1)}

  def describe(m) when is_map(m),
    do: %{"map" => Enum.map(:maps.to_list(m), fn {k, v} -> [describe(k), describe(v)] end)}

  # A minimal JSON encoder (Elixir 1.14 ships none).
  def json(nil), do: "null"
  def json(true), do: "true"
  def json(false), do: "false"
  def json(i) when is_integer(i), do: Integer.to_string(i)
  def json(s) when is_binary(s), do: [?", escape(s), ?"]
  def json(l) when is_list(l), do: [?[, Enum.intersperse(Enum.map(l, &json/1), ?,), ?]]

  def json(m) when is_map(m) do
    pairs = m |> Enum.sort() |> Enum.map(fn {k, v} -> [json(k), ?:, json(v)] end)
    [?{, Enum.intersperse(pairs, ?,), ?}]
  end

  defp escape(s) do
    for <<c::utf8 <- s>>, into: "" do
      cond do
        c == ?" -> "\\\""
        c == ?\\ -> "\\\\"
        c < 0x20 or c > 0x7E -> escape_cp(c)
        true -> <<c>>
      end
    end
  end

  defp escape_cp(c) when c > 0xFFFF do
    c = c - 0x10000
    escape_cp(0xD800 + Bitwise.bsr(c, 10)) <> escape_cp(0xDC00 + Bitwise.band(c, 0x3FF))
  end

  defp escape_cp(c), do: "\\u" <> String.pad_leading(Integer.to_string(c, 16), 4, "0")

  def hex(b), do: Base.encode16(b, case: :lower)
end

deep_list = Enum.reduce(1..100, [], fn _, acc -> [acc] end)
deep_map = Enum.reduce(1..60, %{}, fn i, acc -> %{"level#{i}" => acc} end)

# {name, term, canonical?}: canonical means our encoder must reproduce the "minor2" bytes.
cases = [
  {"int_zero", 0, true},
  {"int_255", 255, true},
  {"int_256", 256, true},
  {"int_negative", -1, true},
  {"int32_max", 2_147_483_647, true},
  {"int32_min", -2_147_483_648, true},
  {"int32_max_plus_one", 2_147_483_648, true},
  {"int32_min_minus_one", -2_147_483_649, true},
  {"bignum_2_pow_64", 18_446_744_073_709_551_616, true},
  {"bignum_neg_2_pow_200", -Integer.pow(2, 200), true},
  {"bignum_large_big_ext", Integer.pow(3, 2000), true},
  {"float_tenth", 0.1, true},
  {"float_huge_negative", -1.5e300, true},
  {"float_zero", 0.0, true},
  {"float_tiny", 5.0e-324, true},
  {"atom_ok", :ok, true},
  {"atom_latin1", :"héllo", true},
  {"atom_utf8", :"日本語", true},
  {"atom_empty", :"", true},
  {"nil", nil, true},
  {"true", true, true},
  {"false", false, true},
  {"binary_utf8", "héllo wörld ✓", true},
  {"binary_not_utf8", <<255, 0>>, true},
  {"binary_empty", "", true},
  {"binary_long", String.duplicate("abcdefghij", 300), true},
  {"charlist_abc", ~c"abc", false},
  {"list_empty", [], true},
  {"list_of_large_ints", [1000, 2000, -3], true},
  {"list_nested", [1, [2, [3, []]], "x"], false},
  {"list_mixed", [1, "a", :b, 2.5, nil, true, {1}], true},
  {"tuple_empty", {}, true},
  {"tuple_mixed", {:ok, "two", 3, [4000]}, true},
  {"tuple_large", Tuple.duplicate(:x, 300), true},
  {"map_empty", %{}, true},
  {"map_atom_keys", %{op: :call, id: 123, function: "add", args: [1, 2], kwargs: %{}}, false},
  {"map_binary_keys", %{"name" => "agent", "retries" => 3, "stream" => false}, true},
  {"map_integer_keys", %{1 => "one", 2 => "two", -5 => nil}, true},
  {"map_map_and_list_keys", %{%{a: 1} => :map_key, [1, 2] => :list_key, {1, [2]} => :tuple_key}, false},
  {"map_large_binary_keys", Map.new(1..40, fn i -> {"key#{i}", i * i} end), false},
  {"map_large_atom_keys", Map.new(1..33, fn i -> {String.to_atom("k#{i}"), "v#{i}"} end), false},
  {"compressible_list", List.duplicate("hello world, hello world", 200), true},
  {"deep_list", deep_list, true},
  {"deep_map", deep_map, true}
]

out =
  for {name, term, canonical} <- cases do
    variants = %{
      "default" => Golden.hex(:erlang.term_to_binary(term)),
      "compressed" => Golden.hex(:erlang.term_to_binary(term, [:compressed])),
      "minor2" => Golden.hex(:erlang.term_to_binary(term, minor_version: 2))
    }

    variants =
      if is_float(term),
        do: Map.put(variants, "minor0", Golden.hex(:erlang.term_to_binary(term, minor_version: 0))),
        else: variants

    %{"name" => name, "value" => Golden.describe(term), "canonical" => canonical, "hex" => variants}
  end

path = Path.join([__DIR__, "..", "tests", "data", "etf_golden.json"]) |> Path.expand()
File.write!(path, [Golden.json(%{"generator" => "scripts/gen_etf_golden.exs", "otp" => System.otp_release(), "cases" => out}), ?\n])
IO.puts("wrote #{length(out)} cases to #{path}")

if "--verify" in System.argv() do
  root = Path.expand(Path.join(__DIR__, ".."))
  py = Path.join([root, ".venv", "bin", "python"])
  {text, 0} = System.cmd(py, [Path.join([root, "scripts", "etf_encode_golden.py"]), path])

  ours = for line <- String.split(text, "\n", trim: true), into: %{} do
    [name, hex] = String.split(line, " ")
    {name, Base.decode16!(hex, case: :lower)}
  end

  for {name, term, _} <- cases do
    back = :erlang.binary_to_term(Map.fetch!(ours, name), [:safe])
    if back !== term, do: raise("#{name}: Erlang decodes our encoding to #{inspect(back)}")
  end

  IO.puts("verified: Erlang decodes our encoding of all #{length(cases)} cases to the original term")
end
