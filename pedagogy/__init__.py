"""Pedagogy checks that serving, dashboards and training share: answer grading and the
answer-leak judge. Torch-free and Django-free; every check on text a user or a model wrote is
bounded in size and in time (``pedagogy.bounded``)."""
