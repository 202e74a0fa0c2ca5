import base64



def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def error_of(response, status):
    assert response.status_code == status, response.content[:500]
    return response.json()["error"]
