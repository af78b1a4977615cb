from django.contrib import admin

from .models import Problem


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ("title", "difficulty", "source", "final_answer", "is_active")
    list_filter = ("source", "difficulty", "is_active")
    search_fields = ("title", "text")
