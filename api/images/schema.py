"""How `/api/schema` describes the compute image endpoints (seed 002)."""
from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from config.openapi import errors


# -- compute image shapes -----------------------------------------------------------------------
class ImageUpload(serializers.Serializer):
    file = serializers.FileField()


class SavedImage(serializers.Serializer):
    path = serializers.CharField(help_text="As given, relative to `compute/`.")
    url = serializers.CharField(help_text="The CDN URL, or this endpoint's.")
    bytes = serializers.IntegerField()
    mime = serializers.CharField(help_text="Sniffed from the content.")
    sha256 = serializers.CharField()


# -- compute image operations ---------------------------------------------------------------------
IMAGE_PATH = OpenApiParameter(
    "path", str, OpenApiParameter.PATH,
    description="Relative to `compute/`. Absolute paths, `..`, empty segments, backslashes and control "
                "characters are refused (400 `invalid_path`).",
    examples=[OpenApiExample("Image path", value="generations/sunset.png")])


def _image_read(method: str, *, body: bool) -> Callable:
    # Bytes of any type for GET (`(status, "*/*")` keys); no body at all for HEAD.
    bytes_ = OpenApiTypes.BINARY if body else None
    ok, partial = ((200, "*/*"), (206, "*/*")) if body else (200, 206)
    redirect = {302: OpenApiResponse(description="Served by the CDN: see `Location`.")} if body else {}
    return extend_schema(
        operation_id=f"image_{method.lower()}", summary="Get an image" if body else "Whether an image exists",
        description=("A 302 to the CDN when the S3 backend has a public endpoint, else the bytes." if body
                     else "200 with its length and type, or 404."),
        parameters=[
            IMAGE_PATH,
            OpenApiParameter("Range", str, OpenApiParameter.HEADER, description="One range, `bytes=start-end`."),
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER),
            OpenApiParameter("ETag", str, OpenApiParameter.HEADER, response=[200, 206, 304]),
            OpenApiParameter("Content-Range", str, OpenApiParameter.HEADER, response=[206, 416], required=True,
                             description="`bytes start-end/size`; on 416, `bytes */size`."),
            *([OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[302], required=True)]
              if body else []),
        ],
        responses={
            ok: OpenApiResponse(bytes_, description="The image."),
            partial: OpenApiResponse(bytes_, description="The requested range."),
            **redirect,
            304: OpenApiResponse(description="Not modified (`If-None-Match`)."),
            **errors(409, 416),
        },
    )


image_list = extend_schema(
    operation_id="image_list", summary="List image paths",
    parameters=[
        OpenApiParameter("prefix", str, description="Paths starting with this, e.g. `generations/`.",
                         examples=[OpenApiExample("Generations", value="generations/")]),
        OpenApiParameter("limit", {"type": "integer", "minimum": 1}, default=100,
                         description="At most 1000 are answered."),
    ],
    responses={200: OpenApiResponse({"type": "array", "items": {"type": "string"}},
                                    description="Paths relative to `compute/`.")},
)
image_get = _image_read("GET", body=True)
image_head = _image_read("HEAD", body=False)
image_save = extend_schema(
    operation_id="image_save", summary="Save an image",
    description="Multipart `file`. Executables and HTML are refused before a byte is written. An existing path "
                "answers 409 unless `overwrite=true`.",
    parameters=[IMAGE_PATH, OpenApiParameter("overwrite", bool, default=False)],
    request={"multipart/form-data": ImageUpload},
    responses={201: SavedImage, **errors(409)},
)
image_delete = extend_schema(
    operation_id="image_delete", summary="Delete an image",
    parameters=[IMAGE_PATH], responses={204: OpenApiResponse(description="Deleted.")},
)
