from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views

api_v1 = [
    path("", include("models_registry.api_urls")),
    path("", include("reviews.api_urls")),
    path("", include("appeals.api_urls")),
    path("", include("audit.api_urls")),
    path("", include("oversight.api_urls")),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
    path("models/", include("models_registry.urls")),
    path("review/", include("reviews.urls")),
    path("appeals/", include("appeals.urls")),
    path("my-decision/", include("appeals.portal_urls")),
    path("audit/", include("audit.urls")),
    path("", include("oversight.urls")),
]
