import httpx

from driftline.adapters import prefect_api
from driftline.app.ci_summary import summary


def test_the_summary_is_the_runs_state_and_its_markdown_artifacts(monkeypatch):
    answers = {"/flow_runs/r1": {"name": "brave-fox", "state": {"name": "Failed", "message": "a gate failed"}},
               "/artifacts/filter": [{"data": "| gate | result |"}, {"data": None}]}

    def request(method, url, json=None, headers=None, timeout=None):
        return httpx.Response(200, json=answers[url.removeprefix("http://prefect/api")],
                              request=httpx.Request(method, url))

    monkeypatch.setattr(prefect_api.httpx, "request", request)
    assert summary("http://prefect/api", "r1") == "**brave-fox**: Failed (a gate failed)\n\n| gate | result |"
    answers["/artifacts/filter"] = []
    assert summary("http://prefect/api", "r1").endswith("(the run published no report)")
