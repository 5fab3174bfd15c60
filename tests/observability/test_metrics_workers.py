"""``/metrics`` of ``trioproxy run --workers 2`` reports the totals of both workers: the request
counter with the requested model's name equals the requests sent, on every scrape, whichever worker
answers it (prometheus_client's multiprocess mode, set up by ``trioproxy run``)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import MASTER_KEY
from support.proxy_process import ProxyProcess, write_config

#: a response-headers hook that names the worker process that answered
WORKER_PID_HANDLER = '''
import os
from trioproxy import CustomLogger


class WorkerPid(CustomLogger):
    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None):
        return {"x-test-worker-pid": str(os.getpid())}


handler = WorkerPid()
'''

CONFIG = {
    "model_list": [{"model_name": "counted-model", "litellm_params": {"model": "fake/counted"}},
                   {"model_name": "other-model", "litellm_params": {"model": "fake/other"}}],
    "litellm_settings": {"callbacks": ["worker_pid.handler"]},
    "general_settings": {"master_key": MASTER_KEY},
}


def _requests_total(text: str, model: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "trioproxy_requests_total" and sample.labels.get("model") == model:
                total += sample.value
    return total


def _scrape(base_url: str) -> tuple[str, str]:
    """One scrape on a connection of its own (any worker may accept it): its text and worker pid."""
    with httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as fresh:
        response = fresh.get("/metrics")
        assert response.status_code == 200, response.text
        return response.text, _worker_of(fresh)


def _worker_of(client: httpx.Client) -> str:
    """The pid of the worker behind this client's connection (the hook's header on a models call)."""
    answer = client.post("/v1/chat/completions", json={"model": "other-model",
                                                        "messages": [{"role": "user", "content": "who?"}]})
    return answer.headers["x-test-worker-pid"]


def test_metrics_total_across_two_workers(tmp_path: Path) -> None:
    path = write_config(tmp_path, CONFIG, files={"worker_pid.py": WORKER_PID_HANDLER})
    process = ProxyProcess(path, args=["--workers", "2"], cwd=tmp_path)
    try:
        base = process.base_url
        sent = 0
        pids: set[str] = set()
        scraped_by: set[str] = set()
        # new connections until both workers have answered requests and scrapes; every scrape, from
        # whichever worker, counts every request sent so far (the counter is written before the answer)
        for _ in range(400):
            with httpx.Client(base_url=base, timeout=30,
                              headers={"Authorization": f"Bearer {MASTER_KEY}"}) as fresh:
                for _ in range(3):
                    answer = fresh.post("/v1/chat/completions", json={
                        "model": "counted-model", "messages": [{"role": "user", "content": "count me"}]})
                    assert answer.status_code == 200, answer.text
                    pids.add(answer.headers["x-test-worker-pid"])
                    sent += 1
            text, scraper = _scrape(base)
            scraped_by.add(scraper)
            assert _requests_total(text, "counted-model") == sent
            if len(pids) == 2 and len(scraped_by) == 2 and sent >= 12:
                break
        assert len(pids) == 2, "the kernel gave every connection to one worker"
        assert len(scraped_by) == 2, "every scrape was answered by the same worker"
        # the histogram is a total too
        assert re.search(r'trioproxy_request_duration_seconds_count\{model="counted-model",'
                         rf'route="chat/completions"\}} {sent}\.0', text)
        assert process.terminate() == 0
    finally:
        process.kill()


def _send_and_count(process: ProxyProcess, n: int) -> float:
    with httpx.Client(base_url=process.base_url, timeout=30, headers={"Authorization": f"Bearer {MASTER_KEY}"}) as c:
        for _ in range(n):
            answer = c.post("/v1/chat/completions", json={"model": "counted-model",
                                                           "messages": [{"role": "user", "content": "x"}]})
            assert answer.status_code == 200, answer.text
        return _requests_total(c.get("/metrics").text, "counted-model")


def test_an_operators_multiprocess_dir_starts_each_run_from_zero(tmp_path: Path) -> None:
    """``PROMETHEUS_MULTIPROC_DIR`` set by the operator is used, and a previous run's counts (its
    value files) are not added to the next run's, with N workers or one."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    path = write_config(tmp_path, CONFIG, files={"worker_pid.py": WORKER_PID_HANDLER})
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    for args, n in ((["--workers", "2"], 3), (["--workers", "2"], 2), ([], 4), ([], 1)):
        process = ProxyProcess(path, args=args, env=env, cwd=tmp_path)
        try:
            assert _send_and_count(process, n) == n
            assert process.terminate() == 0
        finally:
            process.kill()
        assert any(metrics_dir.glob("*.db"))      # the operator's directory was the one used
