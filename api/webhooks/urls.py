from django.urls import path

from api.webhooks import views

urlpatterns = [
    path("", views.WebhookCollectionView.as_view(), name="webhooks"),
    path("/<str:webhook_id>", views.WebhookDetailView.as_view(), name="webhook-detail"),
]
