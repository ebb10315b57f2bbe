"""The OpenAPI document as the FastAPI ecosystem expects it: the bearer token is a security
scheme (Swagger's *Authorize* button), write routes and protected reads declare it, every JSON
route has a response schema, every operation has a resource tag; and what it declares works."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from detector.alerts import open_store
from detector.api import ApiContext, create_app
from detector.app.bearings import BearingStore
from detector.center import open_center_store
from detector.center.app import build_center_app
from tests.api.test_requests import TOKEN, event

READ = "read-token-xyz"
VEHICLE = "tok-vehicle-1"
WRITE_METHODS = {"post", "put", "patch", "delete"}


def operations(spec):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield path, method, op


@pytest.fixture(params=["vehicle", "vehicle+read", "center", "center+read"])
def served(request, tmp_path):
    """(client, spec, read_token) of each kind of app."""
    read = READ if request.param.endswith("+read") else None
    if request.param.startswith("vehicle"):
        store = open_store(None, data_dir=tmp_path)
        store.alert = store.apply_event(event(), site="S", run_id="r1")
        app = create_app(ApiContext(store=store, token=TOKEN, read_token=read, bearings=BearingStore()))
    else:
        store = open_center_store(None, data_dir=tmp_path)
        app = build_center_app(store, token=TOKEN, vehicle_tokens={VEHICLE: "v1"}, read_token=read)
    with TestClient(app) as c:
        c.store = store
        yield c, c.get("/openapi.json").json(), read
    store.close()


def test_the_bearer_token_is_a_security_scheme(served):
    _, spec, _ = served
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiToken"] == {**schemes["apiToken"], "type": "http", "scheme": "bearer"}
    if "/api/v1/ingest" in spec["paths"]:
        assert schemes["vehicleToken"]["scheme"] == "bearer"


def test_write_routes_declare_security_and_open_routes_do_not(served):
    _, spec, read = served
    for path, method, op in operations(spec):
        sec = [name for req in op.get("security", []) for name in req]
        if path.startswith("/api/v1/ingest"):
            assert sec == ["vehicleToken"], (method, path)
        elif method in WRITE_METHODS:
            assert sec == ["apiToken"], (method, path)
        elif path in ("/api/v1/health", "/metrics"):
            assert sec == [], path  # liveness probes and Prometheus stay open
        else:  # reads: secured exactly where a read token is configured
            assert sec == (["apiToken"] if read else []), (method, path)


def test_every_json_route_has_a_response_schema_and_every_operation_a_tag(served):
    _, spec, _ = served
    known_tags = {t["name"] for t in spec["tags"]}
    for path, method, op in operations(spec):
        assert len(op.get("tags", [])) == 1 and op["tags"][0] in known_tags, (method, path)
        ok = op["responses"].get("200") or op["responses"]["201"]  # 201: a POST that creates (POST /bearings)
        content = ok.get("content", {})
        assert content, (method, path)
        if "application/json" in content:
            schema = content["application/json"].get("schema")
            assert schema and schema != {}, (method, path)  # a response_model, not "any JSON"
    tags = {op["tags"][0] for *_, op in operations(spec)}
    assert {"health", "alerts", "sites", "evidence", "metrics"} <= tags
    if "/api/v1/ingest" in spec["paths"]:
        assert {"ingest", "overview", "vehicles"} <= tags


def test_authorize_works_where_the_openapi_says_security_applies(served):
    """What Swagger's Authorize sends (``Authorization: Bearer <token>``) passes every declared
    security requirement, and is needed there."""
    c, spec, read = served
    alert = getattr(c.store, "alert", None)
    checked = 0
    for path, method, op in operations(spec):
        if not op.get("security") or "{" in path and alert is None or path.endswith("/stream"):
            continue
        url = path.replace("{alert_id}", alert.id if alert else "x").replace("{site}", "S").replace("{name}", "spectrum") \
            .replace("{vehicle_id}", "v1")
        scheme = op["security"][0]
        token = VEHICLE if "vehicleToken" in scheme else (TOKEN if method in WRITE_METHODS else read)
        kw = {"json": {"status": "acknowledged"}} if method == "patch" else {"json": {}} if method == "post" else {}
        without = c.request(method, url, **kw)
        assert without.status_code == 401, (method, path, without.text)
        with_token = c.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw)
        assert with_token.status_code != 401, (method, path, with_token.text)
        checked += 1
    assert checked >= 1


def test_a_patch_without_token_is_401_before_its_body_even_with_the_scheme_declared(tmp_path):
    store = open_store(None, data_dir=tmp_path)
    a = store.apply_event(event(), site="S", run_id="r1")
    try:
        with TestClient(create_app(ApiContext(store=store, token=TOKEN))) as c:
            r = c.patch(f"/api/v1/alerts/{a.id}", content="{not json", headers={"Content-Type": "application/json"})
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            r = c.patch(f"/api/v1/alerts/{a.id}", content="{not json",
                        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 422
    finally:
        store.close()


def test_domain_errors_have_one_mapping():
    from detector.alerts import InvalidTransition
    from detector.api.errors import status_of
    from detector.center import IngestError
    from detector.core.errors import InputError

    assert status_of(InputError("x")) == 422 and status_of(ValueError("x")) == 422
    assert status_of(InvalidTransition("x")) == 409
    assert status_of(IngestError("x", 403)) == 403 and status_of(IngestError("x")) == 422


def test_the_shared_pieces_are_public():
    """The center builds on public names of the API package, not on private ones."""
    import ast
    import inspect

    import detector.center.app as center_app

    tree = ast.parse(inspect.getsource(center_app))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("detector.api"):
            assert all(not n.name.startswith("_") for n in node.names), node.module


def test_the_names_other_packages_import_stay_importable():
    """The CLI, the push wiring, the bench and older callers import these; the split keeps them."""
    from detector.api import ApiContext, create_app  # noqa: F401
    from detector.api.app import ApiContext as A2
    from detector.api.app import build_router
    from detector.api.auth import (  # noqa: F401
        MIN_TOKEN_CHARS,
        WriteTokenMiddleware,
        load_or_create_token,
    )
    from detector.api.dashboard import FIGURES, STATIC_FILES, build_dashboard_router  # noqa: F401
    from detector.api.stream import build_stream_router, events_after, last_event_seq  # noqa: F401
    from detector.center.app import INGEST_PREFIX, build_center_app  # noqa: F401

    assert A2 is ApiContext and INGEST_PREFIX == "/api/v1/ingest"
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(build_router())
    assert set(app.openapi()["paths"]) >= {"/api/v1/health", "/api/v1/alerts", "/api/v1/alerts/{alert_id}"}
