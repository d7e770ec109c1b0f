"""Telemetry: OpenTelemetry traces, Prometheus metrics and structured logs.

Configured once per process from settings (``configure_tracing``, ``configure_logging``,
``prepare_multiprocess_dir``); nothing here connects or reads the environment at import.
"""
