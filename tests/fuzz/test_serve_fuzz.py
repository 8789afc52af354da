"""Property-based fuzzing of ``criticlab serve`` as a real process (Hypothesis): whatever body a
client posts to whichever endpoint, with the token on or off, the answer is one JSON object
(an ``error`` line or the endpoint's result), never a 5xx; the server's log holds no traceback;
and the server still answers ``/health``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.strategies import RAW_LINES, bad_record, good_record, hostile_value
from tests.serve.conftest import Server, start, stop

ENDPOINTS = ("/v1/critique", "/v1/reward", "/get_reward", "/v1/info", "/v1/stats")
TOKEN = "fuzz-token"
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

images = st.lists(st.one_of(st.sampled_from([
    "/etc/passwd", "/dev/zero", "../../secret.png", "data:image/png;base64,iVBORw0KGgo=",
    "https://example.org/a.png", "file:///etc/passwd", "data:text/plain,hi", ""]),
    st.text(max_size=12)), max_size=3)


@st.composite
def record(draw: st.DrawFn) -> object:
    i = draw(st.integers(0, 99))
    rec = dict(draw(st.one_of(good_record(i), bad_record(i))))
    if draw(st.booleans()):
        rec["images"] = draw(images)
    if draw(st.booleans()):
        rec["solution"] = draw(st.sampled_from([
            " " * 5000, "Step 1: 2 + 2 = 5\nStep 2: done", "*" * 3000, "\n\n" * 500,
            "1 + 1 = 2\n" * 300]))
        rec.pop("steps", None)
    return draw(st.one_of(st.just(rec), hostile_value))


@st.composite
def openrlhf_body(draw: st.DrawFn) -> object:
    n = draw(st.integers(0, 3))
    prompts = draw(st.lists(st.text(max_size=20), min_size=n, max_size=n))
    tails = draw(st.lists(st.one_of(st.text(max_size=40), st.sampled_from([
        " " * 20_000, "</s>" * 3000, " 2 + 2 = 4 <|im_end|>\n<|endoftext|>", "<pad>" * 100])),
        min_size=n, max_size=n))
    body = {"query": [p + t for p, t in zip(prompts, tails, strict=True)], "prompts": prompts}
    if draw(st.booleans()):
        body["labels"] = draw(st.lists(hostile_value, min_size=n, max_size=n))
    for key in draw(st.lists(st.sampled_from(["query", "prompts", "labels"]), max_size=1)):
        body[key] = draw(hostile_value)
    return body


bodies = st.one_of(
    st.builds(lambda recs: json.dumps({"records": recs}).encode(),
              st.lists(record(), max_size=4)),
    st.builds(lambda recs, reward, crit: json.dumps(
        {"records": recs, "reward": reward, "critiques": crit}).encode(),
        st.lists(record(), min_size=1, max_size=3),
        st.one_of(st.sampled_from(["verdict", "first_error", "score", "gold:shaped"]),
                  hostile_value), st.one_of(st.booleans(), hostile_value)),
    st.builds(lambda b: json.dumps(b).encode(), openrlhf_body()),
    st.builds(lambda v: json.dumps(v).encode(), hostile_value),
    st.sampled_from(RAW_LINES),
    st.binary(max_size=200),
)
headers = st.sampled_from([{}, {"Authorization": f"Bearer {TOKEN}"},
                           {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                           {"Content-Type": "text/plain"}, {"Content-Length": "99999999"}])


@pytest.fixture(scope="module", params=["no-token", "token"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("serve-fuzz"), "--critic", "arithmetic",
              "--max-batch", "8", "--max-body", "400000", "--max-record", "100000",
              "--max-record-steps", "500",
              token=TOKEN if request.param == "token" else None)
    yield s
    stop(s)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_hostile_bodies_get_one_json_line(server: Server, endpoint: str) -> None:
    with httpx2.Client(base_url=server.url, timeout=60) as http:

        @FUZZ
        @given(body=bodies, head=headers)
        def prop(body: bytes, head: dict[str, str]) -> None:
            if endpoint.startswith("/v1/info") or endpoint.startswith("/v1/stats"):
                r = http.get(endpoint, headers={k: v for k, v in head.items()
                                                if k == "Authorization"})
            else:
                send = dict(head)
                if "Content-Length" in send:  # a lying length: the server must not wait
                    send.pop("Content-Length")
                r = http.post(endpoint, content=body, headers=send)
            assert r.status_code < 500, (endpoint, body[:300], r.status_code, r.text[:300])
            lines = r.text.strip().splitlines()
            assert len(lines) == 1, r.text[:300]
            answer = json.loads(lines[0])
            assert isinstance(answer, dict)
            if r.status_code >= 400:
                assert set(answer) == {"error"} and "\n" not in answer["error"]
            assert http.get("/health").json() == {"status": "ok"}

        prop()
    log = server.output()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
