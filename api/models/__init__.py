"""The shapes of the API's JSON answers, one module per resource, for ``response_model=``.

They describe what the routes build (as dicts, in ``api/live.py``, ``api/summary.py`` …); the
OpenAPI document shows them, and clients and schemathesis check answers against them.
"""
