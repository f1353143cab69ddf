defmodule AxonPort.ContentTest do
  use ExUnit.Case, async: true

  import AxonPort.TestHelpers

  alias AxonPort.{Content, Error, Worker}

  @moduletag :agents

  # Not valid UTF-8, so a base64 or text round trip would show.
  @png <<137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 255, 254>>

  defp script(responses), do: %{"provider" => "script", "responses" => responses}

  setup do
    %{w: start_supervised!({Worker, worker_opts([])})}
  end

  defp user_parts(messages) do
    for %{"kind" => "request", "parts" => parts} <- messages,
        %{"part_kind" => "user-prompt", "content" => content} <- parts,
        do: content
  end

  test "a prompt mixing text and an image runs, and history carries the image", %{w: w} do
    prompt = ["What is in this picture?", Content.image(@png, "image/png", identifier: "cat")]

    assert {:ok, %{output: "A cat.", messages: messages}} =
             AxonPort.run(w, [model: script(["A cat."])], prompt)

    assert [["What is in this picture?", image]] = user_parts(messages)

    assert %{"kind" => "binary", "media_type" => "image/png", "identifier" => "cat"} = image
    assert Base.url_decode64!(image["data"]) == @png

    # pydantic-ai's JSON form: bytes are URL-safe base64. The history goes back
    # unchanged: the next turn accepts it.
    assert {:ok, %{output: "Still a cat."}} =
             AxonPort.run(w, [model: script(["Still a cat."])], "And now?", history: messages)
  end

  test "url helpers and plain maps build pydantic-ai's shapes", %{w: w} do
    assert Content.image_url("https://example.com/a.png", force_download: "allow-local") ==
             %{kind: "image-url", url: "https://example.com/a.png", force_download: "allow-local"}

    assert %{kind: "document-url"} = Content.document_url("https://example.com/a.pdf")
    assert %{kind: "binary", media_type: "application/pdf"} = Content.document("%PDF")

    prompt = [
      "Compare",
      %{kind: "image-url", url: "https://example.com/a.png"},
      Content.video_url("https://example.com/v.mp4", media_type: "video/mp4")
    ]

    assert {:ok, %{messages: messages}} = AxonPort.run(w, [model: script(["ok"])], prompt)

    assert [["Compare", %{"kind" => "image-url"}, %{"kind" => "video-url"}]] =
             user_parts(messages)

    assert_raise ArgumentError, fn -> Content.image_url("https://e.com", size: 3) end
  end

  test "a malformed part is a bad_request and the worker keeps serving", %{w: w} do
    assert {:error, %Error{kind: "bad_request", message: message}} =
             AxonPort.run(w, [model: script(["x"])], ["Look", %{kind: "binary", data: @png}])

    assert message =~ "media_type"
    assert {:ok, %{output: "fine"}} = AxonPort.run(w, [model: script(["fine"])], "hi")
  end

  test "an Elixir tool returns an image and a tool_return with content", %{w: w} do
    chart = %{
      name: "chart",
      description: "Draws a chart.",
      parameters: %{type: "object", properties: %{}},
      handler: {:elixir, fn _args -> Content.image(@png, "image/png") end}
    }

    annotated = %{
      chart
      | name: "annotated",
        handler:
          {:elixir,
           fn _args ->
             Content.tool_return("drawn",
               content: ["The chart:", Content.image(@png)],
               metadata: %{"rows" => 3}
             )
           end}
    }

    calls = %{
      "tool_calls" => [
        %{"tool" => "chart", "args" => %{}},
        %{"tool" => "annotated", "args" => %{}}
      ]
    }

    assert {:ok, %{output: "Done.", messages: messages}} =
             AxonPort.run(w, [model: script([calls, "Done."]), tools: [chart, annotated]], "Go")

    returns =
      for %{"parts" => parts} <- messages,
          %{"part_kind" => "tool-return"} = part <- parts,
          into: %{},
          do: {part["tool_name"], part}

    assert %{"kind" => "binary", "data" => data} = returns["chart"]["content"]
    assert Base.url_decode64!(data) == @png
    assert returns["annotated"]["content"] == "drawn"
    assert returns["annotated"]["metadata"] == %{"rows" => 3}
    assert [["The chart:", %{"kind" => "binary"}] | _] = Enum.drop(user_parts(messages), 1)
  end
end
