"""Pedagogy checks that serving, dashboards and training share: answer grading, the answer-leak
and arithmetic judges, the streaming answer guard, moderation of student messages and Bayesian
Knowledge Tracing. Torch-free and Django-free; every check on text a user or a model wrote is
bounded in size and in time (``pedagogy.bounded``)."""
