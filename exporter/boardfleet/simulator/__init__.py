"""Simulated boards for tests and demos.

A :class:`~boardfleet.simulator.fleet.SimFleet` keeps rewriting fixture sysroots in the
real board text formats (HiSilicon ``/proc/media-mem``, a ``hiddrs`` tool, thermal
zones) with values that change over time by scenario; real agents read them.
"""
