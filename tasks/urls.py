from __future__ import annotations

from django.urls import path

from tasks import template_views, views, views_mturk, views_scores

urlpatterns = [
    path("", views.home, name="home"),
    path("work/", views.work_list, name="work-list"),
    path("work/scores/", views_scores.my_scores, name="my-scores"),
    path("work/jobs/<int:job_id>/start/", views.start_job, name="start-job"),
    path("work/tasks/<uuid:assignment_uuid>/", views.task_page, name="task"),
    path("work/tasks/<uuid:assignment_uuid>/submit/", views.submit_task, name="submit-task"),
    path("work/tasks/<uuid:assignment_uuid>/return/", views.return_task, name="return-task"),
    path("work/tasks/<uuid:assignment_uuid>/layout/", template_views.task_layout, name="task-layout"),
    path(
        "work/tasks/<uuid:assignment_uuid>/submit-layout/", template_views.submit_layout_task, name="submit-layout-task"
    ),
    path("mturk/task/", views_mturk.mturk_task, name="mturk-task"),
]
