from django.urls import path

from models_registry import views

app_name = "models_registry"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("<slug:name>/", views.model_card, name="card"),
    path("<slug:name>/policy/", views.policy_edit, name="policy"),
    path("<slug:name>/versions/new/", views.version_new, name="version-new"),
    path("<slug:name>/services/", views.service_grant, name="service-grant"),
    path(
        "<slug:name>/services/<str:username>/revoke/",
        views.service_revoke,
        name="service-revoke",
    ),
]
