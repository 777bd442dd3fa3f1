from django.urls import path

from learning import api

urlpatterns = [
    path("models/<slug:name>/labels/", api.LabelListApi.as_view(), name="api-labels"),
    path(
        "models/<slug:name>/labels.parquet",
        api.LabelParquetApi.as_view(),
        name="api-labels-parquet",
    ),
    path("models/<slug:name>/retrain/", api.RetrainApi.as_view(), name="api-retrain"),
    path(
        "models/<slug:name>/versions/<int:number>/promote/",
        api.VersionPromoteApi.as_view(),
        name="api-version-promote",
    ),
    path("models/<slug:name>/webhook/", api.WebhookApi.as_view(), name="api-webhook"),
    path(
        "models/<slug:name>/deliveries/<int:message_id>/resend/",
        api.DeliveryResendApi.as_view(),
        name="api-delivery-resend",
    ),
]
