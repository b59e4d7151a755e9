"""A fake Microsoft Graph and identity platform over TLS, one per test, and settings that
point the real msal and msgraph-sdk at it."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator

import pytest

from bridge.graph.client import GraphSettings
from bridge.graph.runner import SCOPE, GraphRunner
from bridge.graph.runs import AlreadyRunning, Runs
from tests.fakes.graph import FakeGraph
from tests.fakes.graph_tenant import Tenant
from tests.fakes.graph_tls import (
    ClientCertificate,
    ServerTLS,
    make_client_certificate,
    make_server_tls,
    serve_tls,
)

CLIENT_SECRET = "fake-client-secret"


@pytest.fixture(scope="session")
def server_tls(tmp_path_factory) -> ServerTLS:
    return make_server_tls(tmp_path_factory.mktemp("graph-tls"))


@pytest.fixture(scope="session")
def client_cert(tmp_path_factory) -> ClientCertificate:
    return make_client_certificate(tmp_path_factory.mktemp("graph-app"))


@pytest.fixture
def fake_graph(server_tls: ServerTLS, client_cert: ClientCertificate) -> Iterator[FakeGraph]:
    """A fresh tenant on a fresh port: MSAL apps are cached per process by settings, so a
    new authority URL also means a new MSAL app and an empty token cache."""
    fake = FakeGraph(
        tenant_id=str(uuid.uuid4()),
        client_id=str(uuid.uuid4()),
        client_secret=CLIENT_SECRET,
        client_certificate=client_cert.certificate,
    )
    with serve_tls(fake, server_tls.ssl_context()) as url:
        fake.base_url = url
        yield fake


@pytest.fixture
def graph_settings(fake_graph: FakeGraph, server_tls: ServerTLS) -> GraphSettings:
    return GraphSettings(
        tenant_id=fake_graph.tenant_id,
        client_id=fake_graph.client_id,
        client_secret=CLIENT_SECRET,
        authority_host=fake_graph.base_url,
        graph_base_url=fake_graph.graph_url,
        ca_bundle=str(server_tls.ca_path),
        page_size=3,
        service_principal_id=fake_graph.tenant.service_principal_id,
    )


@pytest.fixture
def settings(settings, graph_settings: GraphSettings, monkeypatch):
    """The app's settings with Graph pointed at the fake; workers read the same from the
    environment."""
    env = {
        "TENANT_ID": graph_settings.tenant_id,
        "CLIENT_ID": graph_settings.client_id,
        "CLIENT_SECRET": graph_settings.client_secret,
        "AUTHORITY_HOST": graph_settings.authority_host,
        "BASE_URL": graph_settings.graph_base_url,
        "CA_BUNDLE": graph_settings.ca_bundle,
        "PAGE_SIZE": str(graph_settings.page_size),
        "SERVICE_PRINCIPAL_ID": graph_settings.service_principal_id,
    }
    for name, value in env.items():
        monkeypatch.setenv(f"BRIDGE_GRAPH_{name}", value)
    from bridge.runtime.config import Settings

    return Settings.from_env()


@pytest.fixture
def tenant(fake_graph: FakeGraph) -> Tenant:
    return fake_graph.tenant


@pytest.fixture
def runner(app, graph_settings: GraphSettings) -> Callable[..., GraphRunner]:
    """Runs reconciliations as the worker and the CLI do (GraphRunner); keyword arguments
    replace Graph settings (the guard's limits, mapping files) for that runner."""
    state = app.extensions["bridge"]

    def make(**changes) -> GraphRunner:
        settings = dataclasses.replace(graph_settings, **changes)
        return GraphRunner(state.directory, state.resource_types, state.redis, "bridge", settings)

    return make


@pytest.fixture
def reconcile(app, runner) -> Callable[..., dict]:
    """A scheduled run: registered, run and finished with the report's status."""

    def run(*, full: bool = False, dry_run: bool = False, **changes) -> dict:
        runs = Runs(app.extensions["bridge"].redis)
        try:
            runs.start(SCOPE)
        except AlreadyRunning:
            pass
        report = runner(**changes).reconcile(full=full, dry_run=dry_run)
        if report["status"] != "awaiting_confirmation":
            runs.finish(SCOPE, report["status"])
        return report

    return run
