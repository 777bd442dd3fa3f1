from django.urls import path

from appeals import api

urlpatterns = [
    path(
        "decisions/<int:decision_id>/access-code/",
        api.AccessCodeApi.as_view(),
        name="api-decision-access-code",
    ),
    path(
        "decisions/<int:decision_id>/notice/", api.NoticeApi.as_view(), name="api-decision-notice"
    ),
    path(
        "decisions/<int:decision_id>/appeal/",
        api.DecisionAppealApi.as_view(),
        name="api-decision-appeal",
    ),
    path("appeals/", api.AppealListApi.as_view(), name="api-appeals"),
    path("appeals/<int:appeal_id>/", api.AppealDetailApi.as_view(), name="api-appeal"),
    path(
        "appeals/<int:appeal_id>/decision/",
        api.AppealDecisionApi.as_view(),
        name="api-appeal-decision",
    ),
]
