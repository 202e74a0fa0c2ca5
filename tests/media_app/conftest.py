import base64

import pytest

from tests.factories import unique_png, upload


@pytest.fixture
def post_file():
    def post(actor, data=None, name="cat.png", **fields):
        payload = {"file": upload(name, data if data is not None else unique_png()), **fields}
        return actor.client.post("/v1/media/upload", payload, format="multipart")

    return post


@pytest.fixture
def alices_media(alice, post_file):
    response = post_file(alice, model="stability/sdxl:1.0", provider="stability", prompt="a red square at dawn")
    assert response.status_code == 201, response.content
    return response.json()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def error_of(response, status):
    assert response.status_code == status, response.content[:500]
    return response.json()["error"]
