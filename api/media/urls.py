from django.urls import path

from api.media import views


urlpatterns = [
    path("", views.MediaCollectionView.as_view(), name="media-collection"),
    path("/upload", views.UploadView.as_view(), name="media-upload"),
    path("/prepare-upload", views.PrepareUploadView.as_view(), name="media-prepare-upload"),
    path("/resolve", views.ResolveView.as_view(), name="media-resolve"),
    path("/ingest", views.IngestView.as_view(), name="media-ingest"),  # before /<media_id>, which would shadow it
    path("/<str:media_id>", views.MediaDetailView.as_view(), name="media-detail"),
    path("/<str:media_id>/presign", views.PresignView.as_view(), name="media-presign"),
    path("/<str:media_id>/content", views.ContentView.as_view(), name="media-content"),
]
