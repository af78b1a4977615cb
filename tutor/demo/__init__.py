"""The demo classroom: a class of the demo teacher with a few weeks of plausible history, so
that a new user meets dashboards, reviews, flags, exports and a retraining data window with
real content (issue 15).

Not a Django app: plain modules that the ``seed_demo_classroom`` command (and ``seed_demo``)
call. Each has one job:

- :mod:`.people`: the simulated students (a fixed list of names, unusable passwords);
- :mod:`.source`: MathDial's real dialogues, read from the shared data folder, and the problems
  the class works on;
- :mod:`.statements`: which turn of a dialogue states the final answer (the guard's reading of
  numbers);
- :mod:`.plan`: the history itself, as plain data: who worked on what, when, what they said,
  answered and rated, and what was flagged (seeded, no database);
- :mod:`.store`: writes a plan in one transaction with bulk inserts;
- :mod:`.seed`: the entry point, :func:`seed_demo_classroom`, idempotent;
- :mod:`.evaluation`: queues the base version's first evaluation.
"""
