"""`POST /v1/media/ingest`: service keys adopt a `compute/` object as a user's media file."""
from __future__ import annotations

from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.principal import principal_for
from config.api import validated
from config.parsers import JSONParser
from media_app import schema
from media_app import serializers as s
from media_app.ingest import media_ingest
from media_app.views import file_options, owner_for
from storage_app.images_api import ServiceKeyOnly


class StorageKeyField(serializers.CharField):
    """Checked by the service (400 `invalid_path`), so every bad key, NUL included, gets the same answer."""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(trim_whitespace=False, **kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class IngestInput(s.ProvenanceInput):
    storage_key = StorageKeyField()
    relocate = serializers.BooleanField(required=False, default=True)


class IngestView(APIView):
    permission_classes = [IsAuthenticated, ServiceKeyOnly]
    parser_classes = [JSONParser]

    @extend_schema(request=IngestInput)
    @schema.media_ingest
    def post(self, request: Request) -> Response:
        principal = principal_for(request)
        data = validated(IngestInput, request.data)
        result = media_ingest(organization=principal.organization, owner=owner_for(principal, data.get("user_id")),
                              storage_key=data["storage_key"], relocate=data["relocate"],
                              options=file_options(data))
        body = s.MediaOutput(request).media(result.media, deduped=result.deduped)
        body["source_key"] = result.media.source_key or None
        body["ingested_before"] = result.ingested_before
        return Response(body, status=200 if result.deduped else 201)
