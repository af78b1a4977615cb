from django.contrib import admin

from .models import Assignment, Classroom, Enrollment


class EnrollmentInline(admin.TabularInline):
    model = Enrollment
    extra = 0
    raw_id_fields = ["student"]
    readonly_fields = ["joined_at"]


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ["name", "teacher", "join_code", "is_archived", "created_at"]
    list_filter = ["is_archived"]
    search_fields = ["name", "teacher__username", "join_code"]
    raw_id_fields = ["teacher"]
    inlines = [EnrollmentInline]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["student", "classroom", "joined_at"]
    search_fields = ["student__username", "classroom__name"]
    raw_id_fields = ["student", "classroom"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["title", "classroom", "due_at", "created_at"]
    search_fields = ["title", "classroom__name"]
    raw_id_fields = ["classroom"]
    filter_horizontal = ["problems"]
