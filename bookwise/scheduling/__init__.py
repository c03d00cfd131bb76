"""Scheduled work: one registry of jobs, declared by the core and by plugins.

:mod:`~bookwise.scheduling.registry` says what a job is (pure), :mod:`.models` keeps each job's
lease and last run, :mod:`.services` decides what is due and runs it, :mod:`.core` declares the
core's own jobs. APScheduler (:mod:`bookwise.jobs`) only ticks. See docs/jobs.md.
"""
