"""Routes of the compute image endpoints, included first by `api.storage.urls`.

The path converter takes any character (newlines and control characters included), so a hostile
path reaches the view's validator and is answered 400 `invalid_path`, not a routing 404.
"""
from django.urls import path, register_converter

from api.images import views as images_api


class AnyPathConverter:
    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AnyPathConverter, "computepath")

urlpatterns = [
    path("images", images_api.ImageListView.as_view(), name="storage-images"),
    path("images/<computepath:path>", images_api.ImageView.as_view(), name="storage-image"),
]
