"""The JSON parser of every API view: bounded in nesting.

With DRF's own parser a deeply nested document raises RecursionError (a 500) in the decoder,
or later in whatever walks the parsed value. This one refuses nesting beyond MAX_JSON_DEPTH
as a 400 `json_too_deep`, and malformed JSON as a 400 `parse_error`, in the error envelope.
"""
from __future__ import annotations

from typing import Any

from rest_framework.parsers import JSONParser as DrfJsonParser
from rest_framework.parsers import get_encoding
from rest_framework.settings import api_settings
from rest_framework.utils import json

from config.errors import InvalidRequest

# Deep enough for any body the API takes (stored `generation` JSON has its own, lower limit),
# far below the interpreter's recursion limit.
MAX_JSON_DEPTH = 32


class JsonTooDeep(InvalidRequest):
    code = "json_too_deep"
    message = f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep."


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def json_loads_bounded(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, strict: bool = True) -> Any:
    """`json.loads`, with nesting past `max_depth` refused as JsonTooDeep (ValueError otherwise)."""
    try:
        value = json.loads(text, parse_constant=json.strict_constant if strict else None)
    except RecursionError:
        raise JsonTooDeep() from None
    if json_depth(value) > max_depth:
        raise JsonTooDeep(f"The JSON is nested more than {max_depth} levels deep.")
    return value


class JSONParser(DrfJsonParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:  # noqa: ANN001
        encoding = get_encoding(parser_context or {})
        try:  # DRF hands JSON parsers request.body, already held to DATA_UPLOAD_MAX_MEMORY_SIZE
            return json_loads_bounded(stream.read().decode(encoding), strict=api_settings.STRICT_JSON)
        except ValueError as exc:
            raise InvalidRequest(f"JSON parse error - {exc}", code="parse_error") from None
