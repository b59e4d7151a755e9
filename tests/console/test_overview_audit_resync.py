"""The overview, the SCIM request log and the resync page."""

from __future__ import annotations


def test_overview_counts_users_groups_and_targets_by_health(console, add_webhook, create_user):
    add_webhook()
    add_webhook(name="quiet", enabled=False)
    add_webhook(name="dry", shadow=True)
    create_user()
    page = console.get("/").text
    assert '<span class="n" id="users">1</span>' in page
    assert '<b id="health-healthy">1</b>' in page
    assert '<b id="health-disabled">1</b>' in page
    assert '<b id="health-shadow">1</b>' in page


def test_overview_shows_the_last_entra_push(console, create_user):
    create_user()
    page = console.get("/").text
    last = page.split('id="last-push">')[1].split("</dd>")[0]
    assert "POST /scim/v2/Users" in last and "201" in last and "(tests)" in last


def test_overview_counts_failed_and_held_deliveries(
    console, add_webhook, create_user, pipeline, receiver
):
    add_webhook()
    receiver.fail_next, receiver.fail_status = 1, 400
    create_user()
    pipeline.run()
    assert '<span class="n" id="dead-total">1</span>' in console.get("/").text


def test_overview_says_when_no_worker_runs(console):
    assert "No worker is running" in console.get("/").text


def test_overview_panel_is_a_fragment_for_the_refresh(console):
    response = console.get("/overview/panel")
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="users"' in response.text


def test_overview_page_asks_to_refresh_itself(console):
    assert 'data-refresh="/console/overview/panel"' in console.get("/").text


def test_request_log_lists_scim_requests_with_masked_bodies(console, create_user):
    create_user(password="Hunter2-secret!")
    page = console.get("/audit").text
    assert "/scim/v2/Users" in page
    assert "Hunter2-secret!" not in page


def test_request_log_filters_by_status(console, scim, create_user):
    create_user()
    scim.get("/Users/does-not-exist")
    page = console.get("/audit", query_string={"status": "4xx"}).text
    assert "/scim/v2/Users/does-not-exist" in page
    assert "<td>POST</td>" not in page


def test_request_log_filters_by_resource(console, create_user):
    first, second = create_user(), create_user()
    page = console.get("/audit", query_string={"resource": first["id"]}).text
    assert f"/console/directory/user/{first['id']}" in page
    assert second["id"] not in page


def test_request_log_refuses_a_bad_filter_with_400(console):
    assert console.get("/audit", query_string={"status": "teapot"}).status_code == 400
    assert console.get("/audit", query_string={"since": "yesterday"}).status_code == 400


def test_request_log_filters_by_time(console, create_user):
    create_user()
    page = console.get("/audit", query_string={"since": "2999-01-01T00:00:00Z"}).text
    assert "No SCIM request matches." in page


def test_resync_of_the_targets_runs_and_reports_progress(
    console, add_webhook, create_user, pipeline
):
    add_webhook()
    create_user()
    pipeline.run()
    response = console.post("/resync/start", {"mode": "targets", "target": "hook"})
    assert response.status_code == 302
    assert console.get("/resync/status.json").json["current"]["status"] == "queued"
    pipeline.run()
    current = console.get("/resync/status.json").json["current"]
    assert (current["status"], current["phase"]) == ("completed", "done")
    assert current["done"] == current["total"] == 1
    assert "badge-completed" in console.get("/resync").text


def test_resync_through_graph_without_graph_says_so(console):
    console.post("/resync/start", {"mode": "both"})
    assert "Microsoft Graph is not configured" in console.get("/resync").text


def test_a_second_resync_while_one_runs_is_refused(console):
    console.post("/resync/start", {"mode": "targets"})
    console.post("/resync/start", {"mode": "targets"})
    assert "already running" in console.get("/resync").text


def test_cancelling_the_running_resync(console):
    console.post("/resync/start", {"mode": "targets", "dry_run": "1"})
    console.post("/resync/cancel")
    assert "Cancelling." in console.get("/resync").text
    assert console.get("/resync/status.json").json["current"]["cancel"] is True


def test_confirming_without_a_guarded_run_says_so(console):
    console.post("/resync/confirm")
    assert "no resync is waiting for confirmation" in console.get("/resync").text


def test_the_refreshing_panel_leaves_an_actions_notice_for_the_page(console):
    console.post("/resync/confirm")
    console.get("/overview/panel")
    assert "no resync is waiting for confirmation" in console.get("/resync").text
