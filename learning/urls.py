from django.urls import path

from learning import views

app_name = "learning"
urlpatterns = [
    path("<slug:name>/learning/", views.learning_page, name="page"),
    path("<slug:name>/learning/retrain/", views.retrain, name="retrain"),
    path("<slug:name>/learning/webhook/", views.webhook, name="webhook"),
    path(
        "<slug:name>/learning/deliveries/<int:message_id>/resend/",
        views.delivery_resend,
        name="resend",
    ),
    path("<slug:name>/versions/<int:number>/promote/", views.version_promote, name="promote"),
]
