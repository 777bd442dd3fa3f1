from django.urls import path

from appeals import views

app_name = "appeals"
urlpatterns = [
    path("", views.appeal_list, name="list"),
    path("next/", views.claim_next, name="next"),
    path("tasks/<int:task_id>/", views.by_task, name="task"),
    path("<int:appeal_id>/", views.appeal_detail, name="detail"),
    path("<int:appeal_id>/decide/", views.decide, name="decide"),
    path("<int:appeal_id>/attachment/", views.attachment, name="attachment"),
]
