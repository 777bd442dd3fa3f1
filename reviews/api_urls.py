from django.urls import path

from reviews import api

urlpatterns = [
    path("decisions/", api.DecisionCreateApi.as_view(), name="api-decisions"),
    path("decisions/bulk/", api.DecisionBulkApi.as_view(), name="api-decisions-bulk"),
    path("decisions/<int:decision_id>/", api.DecisionDetailApi.as_view(), name="api-decision"),
]
