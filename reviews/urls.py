from django.urls import path

from reviews import views

app_name = "reviews"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("next/", views.next_task, name="next"),
    path("stats/", views.stats, name="stats"),
    path("stats/<str:username>/", views.reviewer_page, name="reviewer"),
    path("tasks/", views.task_list, name="tasks"),
    path("tasks/<int:task_id>/", views.case, name="case"),
    path("tasks/<int:task_id>/decide/", views.decide, name="decide"),
    path("tasks/<int:task_id>/release/", views.release, name="release"),
    path("tasks/<int:task_id>/escalate/", views.escalate, name="escalate"),
    path("tasks/<int:task_id>/renew/", views.renew, name="renew"),
]
