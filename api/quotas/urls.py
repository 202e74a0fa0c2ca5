from django.urls import path

from api.quotas import views

urlpatterns = [
    path("usage", views.UsageView.as_view()),
    path("quota", views.QuotaView.as_view()),
    path("quota/recalculate", views.QuotaRecalculateView.as_view()),
]
