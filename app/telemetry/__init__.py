"""Telemetry: Prometheus metrics and structured logs.

A bottom layer like `app.extensions`: the metric objects and the log format are defined here,
imported by the services that count things (a scheduling decision, a preemption) and wired to
requests by `create_app`. Nothing here imports the rest of the app.
"""
