from django.urls import path

from . import views

app_name = "problems"

urlpatterns = [
    path("", views.problem_list, name="list"),
    path("new/", views.problem_create, name="create"),
    path("import/", views.problem_import, name="import"),
    path("check/", views.problem_check, name="check"),
    path("<int:problem_id>/", views.problem_detail, name="detail"),
    path("<int:problem_id>/edit/", views.problem_edit, name="edit"),
    path("<int:problem_id>/archive/", views.problem_archive, name="archive"),
    path("<int:problem_id>/restore/", views.problem_restore, name="restore"),
]
