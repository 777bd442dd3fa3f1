from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import views as core_views

api_v1 = [
    path("", include("models_registry.api_urls")),
    path("", include("reviews.api_urls")),
    path("", include("appeals.api_urls")),
    path("", include("audit.api_urls")),
    path("", include("learning.api_urls")),
    path("", include("oversight.api_urls")),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
    path("models/", include("models_registry.urls")),
    path("models/", include("learning.urls")),
    path("review/", include("reviews.urls")),
    path("appeals/", include("appeals.urls")),
    path("my-decision/", include("appeals.portal_urls")),
    path("audit/", include("audit.urls")),
    path("", include("oversight.urls")),
    # Last: any other /api/ path is a JSON 404, not an HTML page (a newline in it too: `.`
    # would stop there).
    re_path(r"^api/(?P<rest>[\s\S]*)\Z", core_views.api_not_found, name="api-not-found"),
]
