from django.urls import path

from audit import views

app_name = "audit"
urlpatterns = [
    path("", views.home, name="home"),
    path("verify/", views.verify_now, name="verify"),
    path("events/", views.events, name="events"),
    path("decisions/<int:decision_id>/", views.decision_events, name="decision"),
    path("exports/", views.export_list, name="exports"),
    path("exports/<int:export_id>/download/", views.export_download, name="export-download"),
]
