from django.urls import path

from models_registry import views

app_name = "models_registry"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("<slug:name>/", views.model_card, name="card"),
    path("<slug:name>/policy/", views.policy_edit, name="policy"),
]
