from django.urls import path

from audit import views

app_name = "audit"
urlpatterns = [
    path("", views.home, name="home"),
    path("verify/", views.verify_now, name="verify"),
    path("checkpoint/", views.checkpoint_now, name="checkpoint"),
    path("events/", views.events, name="events"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:alert_id>/resolve/", views.alert_resolve, name="alert-resolve"),
]
