from django.urls import path

from . import roster_views, views

app_name = "classes"

urlpatterns = [
    path("", views.class_list, name="list"),
    path("new/", views.class_create, name="create"),
    path("join/", views.join_class, name="join"),
    path(
        "assignments/<int:assignment_id>/problems/<int:problem_id>/start/",
        views.start_assignment_problem,
        name="start_problem",
    ),
    path("<int:class_id>/", views.class_detail, name="detail"),
    path("<int:class_id>/edit/", views.class_edit, name="edit"),
    path("<int:class_id>/code/", views.regenerate_code, name="regenerate_code"),
    path("<int:class_id>/students/add/", views.add_student, name="add_student"),
    path("<int:class_id>/students/import/", roster_views.roster_import, name="roster_import"),
    path(
        "<int:class_id>/students/<int:student_id>/remove/",
        views.remove_student,
        name="remove_student",
    ),
    path("<int:class_id>/export.jsonl", views.export_jsonl, name="export"),
    path("<int:class_id>/assignments/new/", views.assignment_create, name="assignment_create"),
    path(
        "<int:class_id>/assignments/<int:assignment_id>/edit/",
        views.assignment_edit,
        name="assignment_edit",
    ),
    path(
        "<int:class_id>/assignments/<int:assignment_id>/delete/",
        views.assignment_delete,
        name="assignment_delete",
    ),
]
