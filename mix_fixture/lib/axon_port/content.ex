defmodule AxonPort.Content do
  @moduledoc """
  Content parts for multimodal prompts and rich tool results, in pydantic-ai's own
  serialised shapes (the `kind` maps that message history uses).

      image = File.read!("cat.png")
      AxonPort.run(w, agent, ["What is in this picture?", AxonPort.Content.image(image, "image/png")])

  A prompt is a binary, or a list of binaries and parts. Bytes travel as ETF
  binaries (never base64). URL parts are downloaded by pydantic-ai when the
  provider cannot take the URL itself (or with `force_download: true`); its SSRF
  guard refuses private addresses unless `force_download: "allow-local"`. A
  refused or failed download is `{:error, %AxonPort.Error{kind: "bad_request"}}`.

  An Elixir tool may return a part, a list with parts, or `tool_return/2`.
  """

  @typedoc "A content part (plain maps with the same keys work too)."
  @type part :: %{required(:kind) => String.t(), optional(atom()) => term()}

  @typedoc "What `AxonPort.run/4` takes as a prompt."
  @type prompt :: String.t() | part() | [String.t() | part()] | nil

  @binary_opts [:identifier, :vendor_metadata]
  @url_opts [:media_type, :identifier, :force_download, :vendor_metadata]

  @doc """
  Binary content of any media type. Options: `:identifier` (a name the model can
  refer to the file by) and `:vendor_metadata` (e.g. `%{"detail" => "low"}` for
  OpenAI images).
  """
  @spec binary(binary(), String.t(), keyword()) :: part()
  def binary(data, media_type, opts \\ []) when is_binary(data) and is_binary(media_type) do
    opts = Keyword.validate!(opts, @binary_opts)
    put_opts(%{kind: "binary", data: data, media_type: media_type}, opts)
  end

  @doc "Image bytes, e.g. `image(png, \"image/png\")`. Options as for `binary/3`."
  @spec image(binary(), String.t(), keyword()) :: part()
  def image(data, media_type \\ "image/png", opts \\ []), do: binary(data, media_type, opts)

  @doc "Document bytes (PDF by default). Options as for `binary/3`."
  @spec document(binary(), String.t(), keyword()) :: part()
  def document(data, media_type \\ "application/pdf", opts \\ []),
    do: binary(data, media_type, opts)

  @doc "Audio bytes, e.g. `audio(wav, \"audio/wav\")`. Options as for `binary/3`."
  @spec audio(binary(), String.t(), keyword()) :: part()
  def audio(data, media_type \\ "audio/wav", opts \\ []), do: binary(data, media_type, opts)

  @doc "Video bytes, e.g. `video(mp4, \"video/mp4\")`. Options as for `binary/3`."
  @spec video(binary(), String.t(), keyword()) :: part()
  def video(data, media_type \\ "video/mp4", opts \\ []), do: binary(data, media_type, opts)

  @doc """
  An image by URL. Options: `:media_type` (else guessed from the URL),
  `:identifier`, `:force_download` (`true`, `false` or `"allow-local"`),
  `:vendor_metadata`.
  """
  @spec image_url(String.t(), keyword()) :: part()
  def image_url(url, opts \\ []), do: url("image-url", url, opts)

  @doc "A document by URL. Options as for `image_url/2`."
  @spec document_url(String.t(), keyword()) :: part()
  def document_url(url, opts \\ []), do: url("document-url", url, opts)

  @doc "Audio by URL. Options as for `image_url/2`."
  @spec audio_url(String.t(), keyword()) :: part()
  def audio_url(url, opts \\ []), do: url("audio-url", url, opts)

  @doc "A video by URL. Options as for `image_url/2`."
  @spec video_url(String.t(), keyword()) :: part()
  def video_url(url, opts \\ []), do: url("video-url", url, opts)

  @doc """
  A tool result that sends `content` (a binary or parts) to the model beside the
  tool's `return_value`, and keeps `metadata` in the history only (pydantic-ai's
  `ToolReturn`). Options: `:content`, `:metadata`.
  """
  @spec tool_return(term(), keyword()) :: map()
  def tool_return(return_value, opts \\ []) do
    opts = Keyword.validate!(opts, [:content, :metadata])
    put_opts(%{return_value: return_value}, opts)
  end

  defp url(kind, url, opts) when is_binary(url) do
    opts = Keyword.validate!(opts, @url_opts)
    put_opts(%{kind: kind, url: url}, opts)
  end

  defp put_opts(map, opts) do
    Enum.reduce(opts, map, fn
      {_key, nil}, acc -> acc
      {key, value}, acc -> Map.put(acc, key, value)
    end)
  end
end
