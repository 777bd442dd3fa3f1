from django.urls import path

from audit import views

app_name = "audit"
urlpatterns = [
    path("", views.home, name="home"),
    path("verify/", views.verify_now, name="verify"),
    path("events/", views.events, name="events"),
]
