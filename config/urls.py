from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api.health import views as health
from api.files import views as storage_views

handler400 = "config.exception_handler.handler400"
handler403 = "config.exception_handler.handler403"
handler404 = "config.exception_handler.handler404"
handler500 = "config.exception_handler.handler500"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("files/<path:key>", storage_views.signed_file, name="signed-file"),
    # one prefix, three surfaces: compute images (seed 002), storage (seeds 001/003), usage and quota
    path("api/v1/storage/", include("api.images.urls")),
    path("api/v1/storage/", include("api.storage.urls")),
    path("api/v1/storage/", include("api.quotas.urls")),
    path("v1/media", include("api.media.urls")),
    path("v1/webhooks", include("api.webhooks.urls")),
    path("v1/uploads/", include("api.uploads.urls")),  # resumable uploads (tus 1.0)
    path("admin/", admin.site.urls),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
_WEB = [path("", include("web.urls"))]  # the web app for people; last, so the API's paths win

if settings.OIDC_LOGIN_ENABLED:  # the admin's browser login through the OIDC provider (accounts/oidc.py)
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
urlpatterns += _WEB
