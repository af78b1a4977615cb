from django.urls import path

from . import views

app_name = "retraining"

urlpatterns = [
    path("", views.job_list, name="jobs"),
    path("jobs/new/", views.job_create, name="job_new"),
    path("jobs/<int:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/progress.json", views.job_progress, name="job_progress"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<int:job_id>/resume/", views.job_resume, name="job_resume"),
    path("versions/", views.version_list, name="versions"),
    path("versions.json", views.versions_json, name="versions_json"),
    path("versions/compare/", views.compare, name="compare"),
    path("versions/<int:version_id>/", views.version_detail, name="version_detail"),
    path("versions/<int:version_id>/evaluate/", views.version_evaluate, name="version_evaluate"),
    path("versions/<int:version_id>/promote/", views.version_promote, name="version_promote"),
    path("rollback/", views.rollback, name="rollback"),
    path("evals/<int:eval_id>/progress.json", views.eval_progress, name="eval_progress"),
]
