from django.urls import include, path

from storage_app import api

urlpatterns = [
    path("", include("storage_app.images_urls")),
    path("buckets", api.BucketListView.as_view()),
    path("buckets/<str:bucket>/objects", api.BucketObjectsView.as_view()),
    path("files", api.FileListView.as_view()),
    path("upload", api.UploadView.as_view()),
    path("objects/<path:object_name>/metadata", api.ObjectMetadataView.as_view()),
    path("objects/<path:object_name>/presigned-url", api.ObjectPresignView.as_view()),
    path("objects/<path:object_name>", api.ObjectDeleteView.as_view()),
    path("usage", api.UsageView.as_view()),
    path("quota", api.QuotaView.as_view()),
    path("quota/recalculate", api.QuotaRecalculateView.as_view()),
]
