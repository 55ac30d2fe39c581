import httpx
import pytest

from driftline.adapters import prefect_api
from driftline.adapters.prefect_api import PrefectApi


@pytest.fixture
def sent(monkeypatch):
    """Every request the adapter makes, answered by `answers` in turn (then 200 [])."""
    calls, answers = [], []

    def request(method, url, json=None, headers=None, timeout=None):
        calls.append({"method": method, "url": url, "json": json, "headers": headers})
        status, body = answers.pop(0) if answers else (200, [])
        return httpx.Response(status, json=body, request=httpx.Request(method, url))

    monkeypatch.setattr(prefect_api.httpx, "request", request)
    monkeypatch.setattr(prefect_api.time, "sleep", lambda s: None)
    return calls, answers


def test_artifact_filters_state_every_field_and_no_nulls(sent):
    calls, _ = sent
    PrefectApi("http://prefect/api/", api_key="k").artifacts(flow_run_id="r1", kind="markdown")
    (call,) = calls
    assert call["url"] == "http://prefect/api/artifacts/filter"
    assert call["headers"] == {"Authorization": "Bearer k"}
    assert call["json"] == {"artifacts": {"flow_run_id": {"any_": ["r1"]}, "type": {"any_": ["markdown"]}},
                            "sort": "CREATED_DESC", "limit": 10, "offset": 0}


def test_a_busy_server_is_retried_only_when_asked(sent):
    calls, answers = sent
    answers += [(503, {}), (200, [{"name": "canary", "id": "d1"}])]
    assert PrefectApi("http://prefect/api", busy_retries=4).deployment_ids() == {"canary": "d1"}
    assert len(calls) == 2
    answers.append((503, {}))
    with pytest.raises(httpx.HTTPStatusError):
        PrefectApi("http://prefect/api").deployment_ids()
