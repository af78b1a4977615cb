from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "tutor.reviews"
    label = "reviews"
    verbose_name = "Ratings and flags"
