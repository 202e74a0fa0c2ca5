"""`POST /v1/media/resolve` with `{"payload": ...}`: media references in a model request, replaced."""
import base64
import io
import wave

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from media_app.models import MediaFile
from storage_app.crypto import generate_key_string
from tests.factories import pdf_bytes, unique_png, upload
from tests.media_app.conftest import body_of, error_of

RESOLVE = "/v1/media/resolve"


def wav_bytes() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000)
        out.writeframes(b"\x00\x01" * 800)
    return buffer.getvalue()


def stored(actor, data: bytes, name: str) -> str:
    response = actor.client.post("/v1/media/upload", {"file": upload(name, data)}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.fixture
def png(alice):
    data = unique_png()
    return stored(alice, data, "cat.png"), data


def resolve(actor, payload, **options):
    return actor.client.post(RESOLVE, {"payload": payload, **options}, format="json")


def fetched(client, url: str) -> bytes:
    if not url.startswith("http://testserver/"):  # S3: a presigned URL of the moto server
        import requests

        return requests.get(url, timeout=30).content
    response = client.get(url)
    assert response.status_code == 200, response.content[:300]
    return body_of(response)


def readable(client, value: str, data: bytes, mime: str = "image/png") -> bool:
    """A URL that serves `data`, or a data URL of it."""
    if value.startswith("data:"):
        return value == f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return fetched(client, value) == data


# -- Jan's behaviour: strings only ------------------------------------------------------------------
def test_a_payload_without_references_comes_back_equal(alice):
    payload = {"model": "m", "messages": [{"role": "user", "content": "data:image/png;base64,AAAA med_x"}],
               "n": 1, "stream": False, "stop": None, "temperature": 0.5}
    response = resolve(alice, payload)
    assert response.status_code == 200 and response.json() == {"payload": payload}


def test_a_placeholder_inside_text_and_a_bare_id_become_signed_urls(alice, png, client):
    media_id, data = png
    payload = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": f"Look at data:image/png;{media_id} please"},
        {"type": "image_url", "image_url": {"url": media_id}}]}]}
    body = resolve(alice, payload).json()["payload"]
    text, url = body["messages"][0]["content"][0]["text"], body["messages"][0]["content"][1]["image_url"]["url"]
    inner = text.removeprefix("Look at ").removesuffix(" please")
    assert readable(client, inner, data) and readable(client, url, data)


def test_without_format_the_bytes_can_be_inlined_as_data_urls(alice, png):
    media_id, data = png
    body = resolve(alice, {"image": media_id, "note": f"[data:image/png;{media_id}]"}, **{"as": "data_url"}).json()
    inline = f"data:image/png;base64,{base64.b64encode(data).decode()}"
    assert body["payload"] == {"image": inline, "note": f"[{inline}]"}


def test_the_ttl_bounds_the_signed_urls(alice, png, settings):
    error = error_of(resolve(alice, {"u": png[0]}, ttl=int(settings.MEDIA_S3_PRESIGN_TTL) + 1), 400)
    assert (error["code"], error["param"]) == ("invalid_ttl", "ttl")


def test_an_id_with_another_prefix_is_left_alone(alice, png):
    payload = {"url": "jan_01hqr8v9k2x3f4g5h6j7k8m9n0", "text": png[0] + "x"}
    assert resolve(alice, payload).json()["payload"] == payload


# -- provider formats, nested references -------------------------------------------------------------
def openai_chat(ref: str) -> dict:
    return {"model": "gpt-4o", "messages": [
        {"role": "system", "content": f"Compare with data:image/png;{ref}"},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": ref, "detail": "high"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "image_url",
                                                             "image_url": {"url": f"data:image/png;{ref}"}}]}]}


def openai_responses(ref: str) -> dict:
    return {"model": "gpt-4.1", "instructions": f"Compare with data:image/png;{ref}", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "What is this?"},
                                     {"type": "input_image", "image_url": ref}]},
        {"type": "function_call_output", "call_id": "c1",
         "output": [{"type": "input_image", "image_url": f"data:image/png;{ref}"}]}]}


def anthropic(ref: str) -> dict:
    return {"model": "claude-sonnet-4", "system": [{"type": "text", "text": f"Compare with data:image/png;{ref}"}],
            "messages": [
                {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": ref},
                                              "cache_control": {"type": "ephemeral"}},
                                             {"type": "text", "text": "What is this?"}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
                    {"type": "image_url", "image_url": {"url": f"data:image/png;{ref}"}}]}]}]}


def gemini(ref: str) -> dict:
    return {"systemInstruction": {"parts": [{"text": f"Compare with data:image/png;{ref}"}]}, "contents": [
        {"role": "user", "parts": [{"text": "What is this?"}, {"file_data": {"file_uri": ref, "mime_type": "x"}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"content": [
            {"image_url": {"url": ref}}]}}}]}]}


def image_parts(fmt: str, body: dict) -> tuple[str, list]:
    """(the system prompt, [the user's part, the tool result's part]) of each format's example."""
    if fmt == "openai":
        msgs = body["messages"]
        return msgs[0]["content"], [msgs[1]["content"][1], msgs[2]["content"][0]]
    if fmt == "openai_responses":
        return body["instructions"], [body["input"][0]["content"][1], body["input"][1]["output"][0]]
    if fmt == "anthropic":
        msgs = body["messages"]
        return body["system"][0]["text"], [msgs[0]["content"][0], msgs[1]["content"][0]["content"][0]]
    contents = body["contents"]
    return (body["systemInstruction"]["parts"][0]["text"],
            [contents[0]["parts"][1], contents[1]["parts"][0]["functionResponse"]["response"]["content"][0]])


def expected_part(fmt: str, value: str, inline: bool) -> dict:
    data = value.split(",", 1)[1] if inline else ""
    if fmt == "openai":
        return {"type": "image_url", "image_url": {"url": value}}
    if fmt == "openai_responses":
        return {"type": "input_image", "image_url": value, "detail": "auto"}
    if fmt == "anthropic":
        source = ({"type": "base64", "media_type": "image/png", "data": data} if inline
                  else {"type": "url", "url": value})
        return {"type": "image", "source": source}
    return ({"inline_data": {"mime_type": "image/png", "data": data}} if inline
            else {"file_data": {"mime_type": "image/png", "file_uri": value}})


EXAMPLES = {"openai": openai_chat, "openai_responses": openai_responses, "anthropic": anthropic, "gemini": gemini}


@pytest.mark.parametrize("as_", ["url", "data_url"])
@pytest.mark.parametrize("fmt", list(EXAMPLES))
def test_references_at_every_depth_become_the_providers_parts(alice, png, client, fmt, as_):
    media_id, data = png
    response = resolve(alice, EXAMPLES[fmt](media_id), format=fmt, **{"as": as_})
    assert response.status_code == 200, response.content[:500]
    system, parts = image_parts(fmt, response.json()["payload"])
    value = system.removeprefix("Compare with ")
    assert readable(client, value, data)
    user_part, tool_part = parts
    if fmt == "openai":
        assert user_part["image_url"].pop("detail") == "high"
    if fmt == "anthropic":
        assert user_part.pop("cache_control") == {"type": "ephemeral"}
    for part in (user_part, tool_part):
        url = value if as_ == "data_url" else _url_of(part)
        assert part == expected_part(fmt, url, as_ == "data_url") and readable(client, url, data)


def _url_of(part: dict) -> str:
    for value in part.values():
        if isinstance(value, str) and value.startswith("http"):
            return value
        if isinstance(value, dict):
            found = _url_of(value)
            if found:
                return found
    return ""


def test_the_rest_of_a_payload_is_kept_as_sent(alice, png):
    payload = {**openai_chat(png[0]), "temperature": 0.2, "tools": [{"type": "function", "function": {"name": "f"}}]}
    body = resolve(alice, payload, format="openai").json()["payload"]
    assert body["temperature"] == 0.2 and body["tools"] == payload["tools"] and body["model"] == "gpt-4o"
    assert body["messages"][1]["content"][0] == {"type": "text", "text": "What is this?"}


# -- audio and PDF ----------------------------------------------------------------------------------
@pytest.fixture
def pdf(alice):
    return stored(alice, pdf_bytes(), "report.pdf")


@pytest.fixture
def wav(alice):
    return stored(alice, wav_bytes(), "hello.wav")


def one_part(ref: str) -> dict:
    return {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_data": ref}}]}]}


def part_of(response) -> dict:
    assert response.status_code == 200, response.content[:500]
    return response.json()["payload"]["messages"][0]["content"][0]


def test_a_pdf_is_an_openai_file_part_when_inlined(alice, pdf):
    part = part_of(resolve(alice, one_part(pdf), format="openai", **{"as": "data_url"}))
    assert part == {"type": "file", "file": {"filename": "report.pdf", "file_data":
                                             f"data:application/pdf;base64,{base64.b64encode(pdf_bytes()).decode()}"}}


def test_a_pdf_url_is_refused_for_openai_chat_naming_its_path(alice, pdf):
    error = error_of(resolve(alice, one_part(pdf), format="openai"), 400)
    assert (error["code"], error["param"]) == ("unsupported_media_for_provider",
                                               "payload.messages[0].content[0].file.file_data")


def test_a_pdf_is_an_input_file_and_an_anthropic_document(alice, pdf):
    assert part_of(resolve(alice, one_part(pdf), format="openai_responses"))["type"] == "input_file"
    part = part_of(resolve(alice, one_part(pdf), format="anthropic"))
    assert part["type"] == "document" and part["source"]["type"] == "url"


def test_inlined_wav_audio_is_openai_input_audio(alice, wav):
    part = part_of(resolve(alice, one_part(wav), format="openai", **{"as": "data_url"}))
    assert part == {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav_bytes()).decode(),
                                                           "format": "wav"}}


def test_audio_is_a_gemini_file_part(alice, wav):
    part = part_of(resolve(alice, one_part(wav), format="gemini"))
    assert part["file_data"]["mime_type"] == MediaFile.objects.get(pk=wav).mime


def test_audio_is_refused_for_anthropic_naming_its_path(alice, wav):
    error = error_of(resolve(alice, one_part(wav), format="anthropic"), 400)
    assert (error["code"], error["param"]) == ("unsupported_media_for_provider",
                                               "payload.messages[0].content[0].file.file_data")


def test_an_unknown_format_is_a_400(alice, png):
    error = error_of(resolve(alice, {"u": png[0]}, format="cohere"), 400)
    assert (error["code"], error["param"]) == ("invalid_choice", "format")


# -- access ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["alice", "carol", "acme_service"])
def test_the_owner_an_admin_and_the_organizations_service_key_resolve(request, png, who):
    assert resolve(request.getfixturevalue(who), openai_chat(png[0]), format="openai").status_code == 200


@pytest.mark.parametrize("who", ["bob", "charlie", "globex_service"])
def test_another_member_or_organization_gets_404_naming_the_path_and_nothing_else(request, png, who):
    payload = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": png[0]}}]}]}
    response = resolve(request.getfixturevalue(who), payload, format="openai")
    error = error_of(response, 404)
    assert (error["code"], error["param"]) == ("media_not_found", "payload.messages[0].content[0].image_url.url")
    assert png[0] not in response.content.decode()


def test_one_unreadable_id_fails_the_whole_call_at_its_first_place(alice, charlie, png):
    charlies = stored(charlie, unique_png(), "charlie.png")
    payload = {"a": png[0], "b": [f"see data:image/png;{charlies}", charlies]}
    error = error_of(resolve(alice, payload), 404)
    assert (error["code"], error["param"]) == ("media_not_found", "payload.b[0]")


def test_a_deleted_file_is_not_found(alice, png):
    assert alice.client.delete(f"/v1/media/{png[0]}").status_code == 200
    assert error_of(resolve(alice, {"u": png[0]}), 404)["code"] == "media_not_found"


def test_an_unknown_id_is_not_found(alice):
    error = error_of(resolve(alice, {"x": {"y": "med_01hqr8v9k2x3f4g5h6j7k8m9n0"}}), 404)
    assert (error["code"], error["param"]) == ("media_not_found", "payload.x.y")


def test_without_credentials_a_payload_is_401_and_with_the_owners_it_resolves(anon, alice, png):
    response = anon.post(RESOLVE, {"payload": {"u": png[0]}}, format="json")
    assert error_of(response, 401)["code"] == "not_authenticated"
    assert resolve(alice, {"u": png[0]}).status_code == 200


def test_an_encrypted_file_is_inlined_as_its_plaintext(alice, settings):
    settings.MEDIA_ENCRYPTION = "app"
    settings.MEDIA_MASTER_KEYS = generate_key_string("k1")
    data = unique_png()
    media_id = stored(alice, data, "secret.png")
    assert MediaFile.objects.get(pk=media_id).encryption == "app"
    body = resolve(alice, {"u": media_id}, **{"as": "data_url"}).json()
    assert body["payload"]["u"] == f"data:image/png;base64,{base64.b64encode(data).decode()}"


# -- caps and cost -----------------------------------------------------------------------------------
def test_all_ids_of_a_payload_are_read_in_one_query(alice):
    ids = [stored(alice, unique_png(), f"{n}.png") for n in range(20)]
    payload = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": i}}
                                                         for i in ids]}]}
    with CaptureQueriesContext(connection) as captured:
        response = resolve(alice, payload, format="anthropic")
    assert response.status_code == 200
    assert len([q for q in captured.captured_queries if "media_app_mediafile" in q["sql"]]) == 1


def test_more_than_1000_distinct_ids_is_a_400(alice):
    from media_app.ids import media_id_new

    error = error_of(resolve(alice, [media_id_new() for _ in range(1001)]), 400)
    assert (error["code"], error["param"]) == ("too_many_references", "payload")


def test_the_same_id_1001_times_is_one_reference(alice, png):
    assert resolve(alice, [png[0]] * 1001).status_code == 200


def test_a_payload_over_the_size_cap_is_413(alice, settings):
    settings.MEDIA_RESOLVE_MAX_PAYLOAD_BYTES = 1000
    error = error_of(resolve(alice, {"text": "x" * 1000}), 413)
    assert (error["code"], error["param"]) == ("payload_too_large", "payload")


def test_inlining_more_than_the_cap_is_413_and_urls_still_work(alice, png, settings):
    settings.MEDIA_RESOLVE_INLINE_MAX_BYTES = len(png[1]) - 1
    error = error_of(resolve(alice, {"u": png[0]}, **{"as": "data_url"}), 413)
    assert (error["code"], error["param"]) == ("inline_too_large", "as")
    assert resolve(alice, {"u": png[0]}).status_code == 200
