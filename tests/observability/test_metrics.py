"""/metrics: per-process counters and histograms, the cluster state read from Redis at
scrape time, behind its own token."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from bridge.graph.runner import SCOPE
from bridge.observability.scrape import exposition, registry
from bridge.targets.signing import new_secret
from tests.factories import entra_user
from tests.observability.conftest import METRICS_TOKEN
from workers.context import context


def scrape(app, token: str = METRICS_TOKEN) -> dict[tuple, float]:
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.data
    return parse(response.get_data(as_text=True))


def parse(text: str) -> dict[tuple, float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, *sorted(s.labels.items()))] = s.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, *sorted(labels.items())), 0.0)


def test_metrics_are_not_served_without_a_configured_token(settings, redis_client):
    bare = create_app(replace(settings, metrics_token=""))
    assert bare.test_client().get("/metrics").status_code == 404


def test_metrics_refuse_a_missing_or_wrong_token(app):
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_refuse_scim_and_admin_tokens(app, token, admin_token):
    client = app.test_client()
    for other in (token, admin_token):
        assert (
            client.get("/metrics", headers={"Authorization": f"Bearer {other}"}).status_code == 401
        )


def test_scim_requests_are_counted_by_method_resource_and_status(app, scim):
    before = scrape(app)
    scim.post("/Users", json=entra_user())
    scim.get("/Users/not-an-id")
    after = scrape(app)
    name = "bridge_scim_requests_total"
    created = dict(method="POST", resource="Users", status="201")
    missing = dict(method="GET", resource="Users", status="404")
    assert value(after, name, **created) - value(before, name, **created) == 1
    assert value(after, name, **missing) - value(before, name, **missing) == 1


def test_scim_latency_is_a_histogram_by_method_and_resource(app, scim):
    before = scrape(app)
    scim.get("/Groups")
    after = scrape(app)
    name = "bridge_scim_request_duration_seconds_count"
    labels = dict(method="GET", resource="Groups")
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    inf = dict(labels, le="+Inf")
    assert value(after, "bridge_scim_request_duration_seconds_bucket", **inf) >= 1


def test_directory_writes_are_counted_by_result_with_their_latency(app, scim):
    before = scrape(app)
    body = entra_user()
    scim.post("/Users", json=body)
    scim.post("/Users", json=body)  # the same userName: a uniqueness conflict
    after = scrape(app)
    name = "bridge_directory_writes_total"
    ok = dict(kind="user", op="create", result="ok")
    taken = dict(kind="user", op="create", result="uniqueness")
    assert value(after, name, **ok) - value(before, name, **ok) == 1
    assert value(after, name, **taken) - value(before, name, **taken) == 1
    count = "bridge_directory_write_duration_seconds_count"
    assert value(after, count, op="create") - value(before, count, op="create") == 2


def test_change_stream_backlog_and_lag_are_read_at_scrape_time(app, scim):
    scim.post("/Users", json=entra_user())
    samples = scrape(app)
    assert value(samples, "bridge_change_stream_length") == 1
    assert value(samples, "bridge_change_stream_lag_seconds") >= 0
    assert value(samples, "bridge_redis_up") == 1
    assert value(samples, "bridge_directory_resources", kind="user") == 1


def test_jobs_are_reported_by_queue_and_state_with_the_oldest_age(app, hook, scim, pipeline):
    hook()
    scim.post("/Users", json=entra_user())
    pipeline.dispatcher.drain()
    samples = scrape(app)
    assert value(samples, "bridge_jobs", queue="bridge", state="queued") == 1
    assert value(samples, "bridge_jobs", queue="bridge-deprovision", state="queued") == 0
    assert value(samples, "bridge_jobs_oldest_queued_age_seconds", queue="bridge") >= 0
    assert ("bridge_jobs", ("queue", "bridge-sync"), ("state", "failed")) in samples


def test_deliveries_are_counted_by_target_and_outcome_with_latency(app, hook, scim, pipeline):
    hook()
    before = scrape(app)
    scim.post("/Users", json=entra_user())
    pipeline.run()
    after = scrape(app)
    name = "bridge_delivery_attempts_total"
    assert (
        value(after, name, target="hook", outcome="delivered")
        - value(before, name, target="hook", outcome="delivered")
        == 1
    )
    count = "bridge_delivery_duration_seconds_count"
    assert value(after, count, target="hook", outcome="delivered") >= 1
    assert value(after, "bridge_target_deliveries_total", target="hook", outcome="delivered") == 1


def test_every_delivery_attempt_is_counted_and_only_called_ones_timed(app, hook, scim, pipeline):
    from workers.deliver import deliver

    target_id = hook()["id"]
    before = scrape(app)
    users = [scim.post("/Users", json=entra_user()).json["id"] for _ in range(2)]
    pipeline.run()
    deliver(target_id, [["user", users[0]]])  # in line already: nothing to send
    deliver(target_id, [["user", users[0]]])
    after = scrape(app)

    def counted(outcome: str) -> float:
        name = "bridge_delivery_attempts_total"
        return value(after, name, target="hook", outcome=outcome) - value(
            before, name, target="hook", outcome=outcome
        )

    assert (counted("delivered"), counted("noop")) == (2, 2)
    count = "bridge_delivery_duration_seconds_count"
    assert (
        value(after, count, target="hook", outcome="delivered")
        - value(before, count, target="hook", outcome="delivered")
        == 2
    )
    assert not any(k[0] == count and ("outcome", "noop") in k[1:] for k in after)


def test_dead_letters_retries_and_consecutive_failures_per_target(app, admin, scim, pipeline):
    body = {
        "name": "gone",
        "kind": "webhook",
        "url": "http://127.0.0.1:9/events",
        "signing_secret": new_secret(),
    }
    assert admin.post("/targets", json=body).status_code == 201
    scim.post("/Users", json=entra_user())
    pipeline.run()
    samples = scrape(app)
    assert value(samples, "bridge_target_dead_letters", target="gone") == 1
    retried = value(samples, "bridge_target_deliveries_total", target="gone", outcome="retried")
    assert retried == app.extensions["bridge"].settings.retry_max_attempts - 1
    assert value(samples, "bridge_target_consecutive_failures", target="gone") >= 1
    assert value(samples, "bridge_target_breaker_open", target="gone") == 0


def test_a_quarantined_targets_breaker_and_held_deliveries(app, hook, scim, pipeline):
    target = hook()
    context().deliveries.record_failure(target["id"], threshold=1)
    scim.post("/Users", json=entra_user())
    pipeline.run()
    samples = scrape(app)
    assert value(samples, "bridge_target_breaker_open", target="hook") == 1
    assert value(samples, "bridge_target_held", target="hook", reason="circuit") == 1
    assert value(samples, "bridge_target_held", target="hook", reason="guard") == 0


def test_reconcile_runs_and_drift_are_counted_and_the_last_drift_shown(app):
    before = scrape(app)
    runs = context().runs
    runs.start(SCOPE, mode="graph")
    runs.finish(SCOPE, "completed", drift={"missing": 3, "attributes": 2, "samples": {}})
    after = scrape(app)
    name = "bridge_reconcile_runs_total"
    assert value(after, name, status="completed") - value(before, name, status="completed") == 1
    drift = "bridge_reconcile_drift_total"
    assert (
        value(after, drift, drift_class="missing") - value(before, drift, drift_class="missing")
        == 3
    )
    assert value(after, "bridge_reconcile_last_drift", drift_class="attributes") == 2
    assert value(after, "bridge_reconcile_last_status", status="completed") == 1


def test_liveness_gauges_are_zero_without_workers(app):
    samples = scrape(app)
    assert value(samples, "bridge_worker_processes_alive") == 0
    assert value(samples, "bridge_dispatchers_alive") == 0
    assert value(samples, "bridge_scheduler_alive", queue="bridge") == 0


def test_a_redis_outage_is_a_gauge_not_a_failed_scrape(settings):
    down = create_app(
        replace(settings, redis_url="redis://127.0.0.1:9/0", redis_timeout_seconds=0.5)
    )
    samples = scrape(down)
    assert value(samples, "bridge_redis_up") == 0


def test_every_processs_metrics_are_summed_from_the_multiprocess_directory(tmp_path):
    """Two processes count into one directory, as granian's workers and a machine's
    workers do under serve.sh; one exposition sums them."""
    script = textwrap.dedent(
        """
        from bridge.observability import metrics
        metrics.observe_request("POST", "/scim/v2/Users", 201, 0.01)
        metrics.observe_delivery("crm", "delivered", 0.02)
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    samples = parse(exposition(registry(str(tmp_path)))[0].decode())
    labels = dict(method="POST", resource="Users", status="201")
    assert value(samples, "bridge_scim_requests_total", **labels) == 2
    count = "bridge_delivery_duration_seconds_count"
    assert value(samples, count, target="crm", outcome="delivered") == 2


def test_a_worker_serves_its_own_metrics_behind_the_token(tmp_path):
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    from bridge.observability.scrape import serve_worker_metrics

    server = serve_worker_metrics("127.0.0.1:0", "wtoken", "")
    port = server.server_port
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            urlopen(url, timeout=5)
        except HTTPError as exc:
            assert exc.code == 401
        else:
            raise AssertionError("served without a token")
        ok = urlopen(Request(url, headers={"Authorization": "Bearer wtoken"}), timeout=5)
        assert "bridge_delivery_attempts" in ok.read().decode()
    finally:
        server.shutdown()
        server.server_close()


def test_a_multiprocess_directory_that_does_not_exist_is_refused_naming_it(tmp_path):
    from bridge.runtime.config import Settings

    missing = tmp_path / "nope"
    try:
        Settings.from_env({"PROMETHEUS_MULTIPROC_DIR": str(missing)})
    except ValueError as exc:
        assert "PROMETHEUS_MULTIPROC_DIR" in str(exc)
    else:
        raise AssertionError("a missing directory was accepted")
