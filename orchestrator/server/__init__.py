"""``orchestrator serve``: an OpenAI-compatible HTTP server over the local model and the
project's pipelines (``rag``, ``agent``, ``story``); the app is
:func:`orchestrator.server.app.create_app`.

Needs the ``serve`` extra (FastAPI, uvicorn, prometheus-client). Application shell: nothing in
the library imports this package.
"""
