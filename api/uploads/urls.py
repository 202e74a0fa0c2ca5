from django.urls import path

from api.uploads import views

urlpatterns = [
    path("", views.UploadCollectionView.as_view(), name="tus-collection"),
    path("<str:upload_id>", views.UploadView.as_view(), name="tus-upload"),
]
