"""``criticlab serve`` as a real process on 127.0.0.1: each endpoint, OpenRLHF's request as
its client sends it, and every limit (401, 400, 413, 429, 504, a disconnect, SIGTERM)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest
import requests

from criticlab.store import Store
from tests.serve.conftest import ROOT, Server, start, stop

PENS = {"id": "pens", "problem": "Ann buys 5 pens at 3 dollars each. What does she pay?",
        "steps": ["5 * 3 = 18 dollars.", "She pays 18 dollars."], "label": 0}
APPLES = {"id": "apples", "problem": "Tom has 3 bags of 4 apples and eats 2. How many are left?",
          "steps": ["3 * 4 = 12 apples.", "12 - 2 = 10 apples are left."], "label": -1}
HALF = {"id": "half", "problem": "What is 2 + 3 * 4?",
        "solution": "Step 1: 3 * 4 = 12\nStep 2: 2 + 12 = 14\nStep 3: 14 + 1 = 16\nStep 4: 16 - 3 = 13",
        "label": 2}


def post(server: Server, path: str, body: object, **kw: object) -> httpx2.Response:
    return httpx2.post(server.url + path, json=body, timeout=30, **kw)  # type: ignore[arg-type]


def stats(server: Server, headers: dict[str, str] | None = None) -> dict:
    return httpx2.get(server.url + "/v1/stats", headers=headers, timeout=5).json()


def wait_inflight(server: Server) -> None:
    deadline = time.monotonic() + 5
    while stats(server)["inflight_items"] == 0:
        assert time.monotonic() < deadline, "nothing in flight"
        time.sleep(0.02)


def test_health_and_info(arith: Server) -> None:
    assert httpx2.get(arith.url + "/health").json() == {"status": "ok"}
    info = httpx2.get(arith.url + "/v1/info").json()
    assert info["critic"] == "arithmetic" and info["model"] is None
    assert info["limits"]["max_batch"] == 8 and info["limits"]["max_body"] == 20000
    assert "gold:shaped" in info["rewards"] and info["default_reward"] == "verdict"
    assert info["auth"] is False and "requests" in info["stats"]


def test_critique_is_critique_json(arith: Server, tmp_path: Path) -> None:
    r = post(arith, "/v1/critique", {"records": [PENS, APPLES]})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["critique"]["first_error"] for x in results] == [0, None]
    assert [x["critique"]["verdict"] for x in results] == ["incorrect", "correct"]
    data = tmp_path / "two.jsonl"
    data.write_text("".join(json.dumps(x) + "\n" for x in (PENS, APPLES)), encoding="utf-8")
    cli = subprocess.run([sys.executable, "-m", "criticlab", "critique", str(data),
                          "--critic", "arithmetic", "--json", "--no-cache"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert [json.loads(line) for line in cli.stdout.splitlines()] == results


def test_rewards(arith: Server) -> None:
    def reward(name: str, **kw: object) -> dict:
        r = post(arith, "/v1/reward", {"records": [PENS, APPLES, HALF], "reward": name, **kw})
        assert r.status_code == 200, r.text
        return r.json()

    assert reward("verdict")["rewards"] == [0.0, 1.0, 0.0]
    assert reward("first_error")["rewards"] == [0.0, 1.0, 0.5]  # HALF: 2 of 4 steps right
    assert reward("score")["rewards"][1] == 1.0
    # the critic's critique against the gold label: right on all three
    assert reward("gold:verdict")["rewards"] == [1.0, 1.0, 1.0]
    assert reward("gold:first_error")["rewards"] == [1.0, 1.0, 1.0]
    assert reward("gold:shaped")["rewards"] == pytest.approx([1.0, 1.0, 1.0])
    body = reward("verdict", critiques=True)
    assert body["reward"] == "verdict" and len(body["critiques"]) == 3
    assert body["critiques"][0]["example"]["problem"]["id"] == "pens"
    no_label = {k: v for k, v in PENS.items() if k != "label"}
    r = post(arith, "/v1/reward", {"records": [PENS, no_label], "reward": "gold:verdict"})
    assert r.status_code == 400 and r.json()["error"].startswith("records[1].label: missing")


def test_openrlhf_get_reward_as_openrlhf_sends_it(arith: Server) -> None:
    # openrlhf/utils/remote_rm_utils.py: requests.post(url, json={"query", "prompts",
    # "labels"}, headers={"Content-Type": "application/json"}, timeout=180), then
    # response.json()[score_key] with score_key "rewards"
    prompt = "<|im_start|>user\nWhat is 2 + 3 * 4?<|im_end|>\n<|im_start|>assistant\n"
    queries = [prompt + "3 * 4 = 12\n2 + 12 = 14\nThe answer is 14.<|im_end|><|endoftext|>",
               prompt + "3 * 4 = 12\n2 + 12 = 15\nThe answer is 15.<|im_end|>",
               prompt + "<|im_end|>"]  # an empty response
    data = {"query": queries, "prompts": [prompt] * 3, "labels": ["14", "14", "14"]}
    response = requests.post(url=arith.url + "/get_reward", json=data,
                             headers={"Content-Type": "application/json"}, timeout=180)
    response.raise_for_status()
    body = response.json()
    assert body["rewards"] == [1.0, 0.0, 0.0]
    assert body["scores"] == body["rewards"]
    assert body["extra_logs"]["response_steps"] == [3.0, 3.0, 0.0]
    bad = requests.post(arith.url + "/get_reward", json={**data, "prompts": ["other"] * 3})
    assert bad.status_code == 400 and bad.json() == {"error": "query[0]: does not contain prompts[0]"}


def test_bad_requests_name_the_field(arith: Server) -> None:
    bad = [PENS, APPLES, {"problem": "x", "steps": "one step"}]
    r = post(arith, "/v1/critique", {"records": bad})
    assert (r.status_code, r.json()) == (400, {"error": "records[2].steps: must be a list of strings"})
    r = httpx2.post(arith.url + "/v1/critique", content=b'{"records": [', timeout=5)
    assert r.status_code == 400 and r.json()["error"].startswith("body: not valid JSON")
    r = post(arith, "/v1/critique", {"records": [PENS], "recrods": []})
    assert r.status_code == 400 and r.json()["error"].startswith("recrods: unknown field")
    r = post(arith, "/v1/reward", {"records": [PENS], "reward": "nope"})
    assert r.status_code == 400 and r.json()["error"].startswith("reward: must be one of")
    r = post(arith, "/v1/critique", {"records": [{"problem": "x", "steps": ["1+1=2"], "label": 5}]})
    assert r.json() == {"error": "records[0].label: must be an integer from -1 to 0"}
    r = post(arith, "/v1/critique", {"records": [{"problem": "bare"}]})
    assert r.status_code == 400 and r.json()["error"].startswith("records[0].steps: no solution")
    assert "Traceback" not in arith.output()


def test_body_and_batch_limits(arith: Server) -> None:
    big = {**PENS, "problem": "x" * 30000}
    r = post(arith, "/v1/critique", {"records": [big]})
    assert r.status_code == 413 and "over the limit of 20000" in r.json()["error"]
    r = post(arith, "/v1/critique", {"records": [PENS] * 9})
    assert (r.status_code, r.json()) == (
        413, {"error": "records: 9 records, over the limit of 8 per request"})


def test_repeat_is_answered_from_the_store(arith: Server) -> None:
    rec = {"problem": "What is 7 * 6?", "steps": ["7 * 6 = 42", "So 42."]}
    first = post(arith, "/v1/critique", {"records": [rec]}).json()
    before = stats(arith)
    again = post(arith, "/v1/critique", {"records": [rec]}).json()
    after = stats(arith)
    assert again == first
    assert after["items_from_store"] == before["items_from_store"] + 1
    assert after["items_critiqued"] == before["items_critiqued"]


def test_token(server_factory) -> None:  # type: ignore[no-untyped-def]
    s = server_factory("--critic", "arithmetic", token="s3cret")
    assert httpx2.get(s.url + "/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        r = httpx2.get(s.url + "/v1/info", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert "token" in r.json()["error"]
    r = post(s, "/v1/critique", {"records": [PENS]})
    assert r.status_code == 401
    ok = post(s, "/v1/critique", {"records": [PENS]}, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert httpx2.get(s.url + "/v1/info", headers={"Authorization": "Bearer s3cret"}).json()["auth"]


def test_non_loopback_needs_a_token(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "criticlab.serve", "--critic", "arithmetic",
                          "--host", "0.0.0.0", "--store", str(tmp_path / "s.sqlite")],
                         capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env={k: v for k, v in __import__("os").environ.items()
                              if k != "CRITICLAB_TOKEN"})
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "--host 0.0.0.0" in lines[0] and "token" in lines[0]


def test_busy_is_429_with_retry_after(slow: Server) -> None:
    first: list[httpx2.Response] = []
    t = threading.Thread(target=lambda: first.append(post(
        slow, "/v1/critique", {"records": [{**APPLES, "problem": "sleep 1.5: apples"}]})))
    t.start()
    wait_inflight(slow)
    r = post(slow, "/v1/critique", {"records": [PENS]})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"].startswith("busy: 1 items in flight, the limit is 1")
    t.join()
    assert first[0].status_code == 200


def test_timeout_is_504_and_its_work_stops(slow: Server) -> None:
    before = stats(slow)
    r = post(slow, "/v1/critique", {"records": [{**PENS, "problem": "sleep 6: pens"}]})
    assert r.status_code == 504 and "over 3 s" in r.json()["error"]
    after = stats(slow)
    assert after["inflight_items"] == 0 and after["items_critiqued"] == before["items_critiqued"]


def test_disconnect_cancels_the_work(slow: Server) -> None:
    before = stats(slow)
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(slow.url + "/v1/critique", timeout=0.5,
                    json={"records": [{**PENS, "problem": "sleep 2: pens"}]})
    deadline = time.monotonic() + 5
    while stats(slow)["requests"].get("cancelled", 0) == before["requests"].get("cancelled", 0):
        assert time.monotonic() < deadline, "the server never noticed the disconnect"
        time.sleep(0.05)
    after = stats(slow)
    assert after["inflight_items"] == 0 and after["items_critiqued"] == before["items_critiqued"]


def test_sigterm_mid_batch_finishes_and_exits_0(tmp_path: Path) -> None:
    s = start(tmp_path, "--critic", "slow", module="tests.serve.slowserver")
    try:
        recs = [{**PENS, "id": f"p{i}", "problem": f"sleep 1.5: pens {i}"} for i in range(3)]
        got: list[httpx2.Response] = []
        t = threading.Thread(target=lambda: got.append(post(s, "/v1/critique", {"records": recs})))
        t.start()
        wait_inflight(s)
        s.proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert got and got[0].status_code == 200 and len(got[0].json()["results"]) == 3
        assert s.proc.wait(30) == 0, s.output()
    finally:
        stop(s)
    with Store(s.store) as db:
        runs = db._db.execute("SELECT run, COUNT(*) FROM results GROUP BY run").fetchall()
    assert len(runs) == 1 and runs[0][1] == 3
