from django.urls import path

from web import views

urlpatterns = [
    path("", views.gallery, name="web-gallery"),
    path("sign-in", views.sign_in, name="web-sign-in"),
    path("sign-out", views.sign_out, name="web-sign-out"),
    path("organization", views.organization_switch, name="web-organization"),
    path("upload", views.upload, name="web-upload"),
    path("m/<str:media_id>", views.detail, name="web-detail"),
    path("m/<str:media_id>/download", views.download, name="web-download"),
    path("m/<str:media_id>/link", views.signed_link, name="web-link"),
    path("m/<str:media_id>/visibility", views.visibility, name="web-visibility"),
    path("m/<str:media_id>/retention", views.retention, name="web-retention"),
    path("m/<str:media_id>/delete", views.delete, name="web-delete"),
    path("p/<str:media_id>", views.share, name="web-share"),
    path("account", views.account, name="web-account"),
    path("account/keys", views.key_create, name="web-key-create"),
    path("account/keys/<int:key_id>/revoke", views.key_revoke, name="web-key-revoke"),
]
