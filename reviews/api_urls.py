from django.urls import path

from reviews import api

urlpatterns = [
    path("decisions/", api.DecisionCreateApi.as_view(), name="api-decisions"),
    path("decisions/bulk/", api.DecisionBulkApi.as_view(), name="api-decisions-bulk"),
    path("decisions/<int:decision_id>/", api.DecisionDetailApi.as_view(), name="api-decision"),
    path(
        "decisions/<int:decision_id>/proof/",
        api.DecisionProofApi.as_view(),
        name="api-decision-proof",
    ),
]
urlpatterns += [
    path("decisions/<int:decision_id>/gold/", api.GoldMarkApi.as_view(), name="api-decision-gold"),
    path("review-tasks/", api.ReviewTaskListApi.as_view(), name="api-review-tasks"),
    path("review-tasks/claim/", api.ReviewTaskClaimApi.as_view(), name="api-review-claim"),
    path("review-tasks/<int:task_id>/", api.ReviewTaskDetailApi.as_view(), name="api-review-task"),
    path(
        "review-tasks/<int:task_id>/decision/",
        api.ReviewSubmitApi.as_view(),
        name="api-review-submit",
    ),
    path(
        "review-tasks/<int:task_id>/release/",
        api.ReviewTaskReleaseApi.as_view(),
        name="api-review-release",
    ),
    path(
        "review-tasks/<int:task_id>/renew/",
        api.ReviewTaskRenewApi.as_view(),
        name="api-review-renew",
    ),
    path(
        "review-tasks/<int:task_id>/escalate/",
        api.ReviewTaskEscalateApi.as_view(),
        name="api-review-escalate",
    ),
    path("review-stats/", api.ReviewStatsApi.as_view(), name="api-review-stats"),
]
