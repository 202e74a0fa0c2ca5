from django.urls import path

from api.storage import views as api

urlpatterns = [
    path("buckets", api.BucketListView.as_view()),
    path("buckets/<str:bucket>/objects", api.BucketObjectsView.as_view()),
    path("files", api.FileListView.as_view()),
    path("upload", api.UploadView.as_view()),
    path("objects/<path:object_name>/metadata", api.ObjectMetadataView.as_view()),
    path("objects/<path:object_name>/presigned-url", api.ObjectPresignView.as_view()),
    path("objects/<path:object_name>", api.ObjectDeleteView.as_view()),
]
