"""Resumable writes (tus): an object appended over several requests, on every backend, with and
without app encryption; the stored object reads back exactly like a one-pass write."""
import os

import pytest

from storage_app import crypto
from storage_app.backends import get_store
from storage_app.crypto import generate_key_string

KEY = "organizations/1/files/1/2026/01/01/big.bin"


@pytest.fixture(params=["none", "app"])
def encryption(request, settings, backend) -> str:
    settings.MEDIA_ENCRYPTION = request.param
    settings.MEDIA_MASTER_KEYS = generate_key_string("k1") if request.param == "app" else ""
    return request.param


class Interrupted(Exception):
    pass


def pieces(data: bytes, size: int):
    return (data[i:i + size] for i in range(0, len(data), size))


def write_in_requests(store, data: bytes, sizes: list[int]) -> dict:
    state = store.append_open(KEY, content_type="application/octet-stream", total=len(data))
    offset = 0
    for size in sizes:
        state = store.append(state, pieces(data[offset:offset + size], 300_000))
        offset += size
    assert offset == len(data)
    return state


@pytest.mark.parametrize("sizes", [[100], [6 * 2**20, 3 * 2**20 + 5, 1, 65536 * 3],
                                   [65536, 65536], [9 * 2**20 + 17]])
def test_an_object_appended_over_several_requests_reads_back_whole(encryption, sizes):
    store, data = get_store(), os.urandom(sum(sizes))
    state = write_in_requests(store, data, sizes)
    assert not store.exists(KEY)
    key_id = store.append_finish(state)
    assert store.read_bytes(KEY, encrypted=encryption == "app") == data
    assert key_id == ("k1" if encryption == "app" else "")


def test_an_app_encrypted_resumable_object_has_the_one_pass_layout(settings, backend):
    settings.MEDIA_ENCRYPTION, settings.MEDIA_MASTER_KEYS = "app", generate_key_string("k1")
    store, data = get_store(), os.urandom(200_000)
    store.append_finish(write_in_requests(store, data, [70_000, 130_000]))
    assert store.size(KEY) == crypto.ciphertext_size(len(data))
    assert store.looks_encrypted(KEY)
    assert store.read_bytes(KEY) == data
    assert data[:1000] not in b"".join(store.open_range(KEY, encrypted=False))


def test_bytes_a_failed_append_wrote_past_the_state_are_dropped(encryption):
    store, data = get_store(), os.urandom(300_000)
    state = store.append_open(KEY, content_type="application/octet-stream", total=len(data))
    state = store.append(state, [data[:100_000]])

    def failing():
        yield b"x" * 150_000
        raise Interrupted()

    with pytest.raises(Interrupted):
        store.append(state, failing())
    state = store.append(state, [data[100_000:]])  # the state from before the failed request
    store.append_finish(state)
    assert store.read_bytes(KEY, encrypted=encryption == "app") == data


def test_an_aborted_write_leaves_nothing(encryption):
    store = get_store()
    state = write_in_requests(store, os.urandom(6 * 2**20 + 3), [6 * 2**20 + 3])
    store.append_abort(state)
    store.append_abort(state)
    assert not store.exists(KEY)
    assert list(store.list("")) == []


def test_the_plaintext_tail_is_not_kept_in_the_clear(settings, backend):
    settings.MEDIA_ENCRYPTION, settings.MEDIA_MASTER_KEYS = "app", generate_key_string("k1")
    store, secret = get_store(), b"the secret tail " * 100
    state = store.append(store.append_open(KEY, content_type="text/plain", total=10**6), [secret])
    assert b"secret" not in repr(state).encode()
