"""api/errors.py: a method a path does not take gets 405 listing every method of that path."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from api.main import create_app
from tests.unit.offline import offline_settings


def test_every_documented_path_lists_all_its_methods_in_a_405(tmp_path: Path) -> None:
    app = create_app(offline_settings(tmp_path))
    client = TestClient(app)
    wrong: list[str] = []
    for template, operations in app.openapi()["paths"].items():
        documented = {m.upper() for m in operations}
        unused = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in documented)
        path = re.sub(r"{[^}]+}", "1", template)
        r = client.request(unused, path)
        allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
        # HEAD: whether a GET route lists it depends on how it was declared; not the point here.
        if r.status_code != 405 or allow - {"HEAD"} != documented - {"HEAD"}:
            wrong.append(f"{unused} {path}: {r.status_code} Allow: {sorted(allow)}")
    assert not wrong, wrong
    # Two routes share /api/v1/sites (GET lists, POST creates): Starlette alone said POST only.
    assert client.options("/api/v1/sites").headers["allow"] == "GET, POST"
    # /api/v1/sites/{domain} does not take the registry's own paths: no site is named "goals".
    allow = client.options("/api/v1/sites/goals").headers["allow"].replace("HEAD, ", "")
    assert allow == "GET, PUT"
    assert client.delete("/api/v1/sites/funnels").status_code == 405


def test_a_body_that_is_not_text_gets_each_routes_documented_400(tmp_path: Path) -> None:
    client = TestClient(create_app(offline_settings(tmp_path)))
    junk = {"content": b"\xe0[Zq\x8e-%", "headers": {"content-type": "application/json"}}
    query = client.post("/api/v2/query", **junk)  # type: ignore[arg-type]
    assert query.status_code == 400
    assert set(query.json()) == {"error"}  # Plausible's shape, as the route documents
    sites = client.post("/api/v1/sites", **junk)  # type: ignore[arg-type]
    assert sites.status_code == 400
    assert "400" in client.app.openapi()["paths"]["/api/v1/sites"]["post"]["responses"]  # type: ignore[attr-defined]
