from django.urls import path

from audit import api

urlpatterns = [
    path("audit/public-key/", api.PublicKeyApi.as_view(), name="api-audit-public-key"),
    path("audit/checkpoints/", api.CheckpointListApi.as_view(), name="api-audit-checkpoints"),
    path(
        "audit/checkpoints/latest/",
        api.LatestCheckpointApi.as_view(),
        name="api-audit-checkpoint-latest",
    ),
    path(
        "audit/checkpoints/<int:size>/cosignatures/",
        api.CosignatureCreateApi.as_view(),
        name="api-audit-cosignatures",
    ),
    path("audit/proofs/inclusion/", api.InclusionProofApi.as_view(), name="api-audit-inclusion"),
    path(
        "audit/proofs/consistency/", api.ConsistencyProofApi.as_view(), name="api-audit-consistency"
    ),
    path("alerts/", api.AlertListApi.as_view(), name="api-alerts"),
    path(
        "alerts/<int:alert_id>/acknowledge/",
        api.AlertAcknowledgeApi.as_view(),
        name="api-alert-acknowledge",
    ),
    path("alerts/<int:alert_id>/resolve/", api.AlertResolveApi.as_view(), name="api-alert-resolve"),
]
