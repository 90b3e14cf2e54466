"""The ``orchestrator`` command line (the application shell; nothing below imports it)."""
