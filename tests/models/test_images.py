"""Images travel to vision-language models as image parts; checked on the wire against a
local recording HTTP server (no vision model runs here)."""

import base64
import json
import os

import pytest

from criticlab.critics.prompted import PromptedCritic
from criticlab.data.jsonl import read_examples
from criticlab.errors import InputError, ModelError
from criticlab.models.base import MAX_IMAGE_BYTES, GenerateConfig, Message, image_url
from criticlab.models.openai import OpenAIModel
from criticlab.store import request_key
from criticlab.types import Problem, Solution
from tests.models.fault_server import FaultServer, ok

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


async def test_images_are_sent_as_image_parts(tmp_path):
    img = tmp_path / "triangle.png"
    img.write_bytes(PNG)
    problem = Problem("geo", "What is the angle x in the figure?",
                      images=(str(img), "https://example.org/fig2.jpg"))
    solution = Solution(("The angles sum to 180, so x = 180 - 60 - 70 = 50.",))
    with FaultServer() as srv:
        srv.script(ok(texts=(r"\boxed{-1}",)))
        model = OpenAIModel("vlm", base_url=srv.base_url, max_retries=0)
        c = await PromptedCritic(model, "processbench").critique(problem, solution)
        await model.aclose()
        (req,) = srv.requests
    assert c.parsed and c.first_error is None
    content = req.body["messages"][0]["content"]
    assert content[0]["type"] == "text" and "angle x" in content[0]["text"]
    assert content[1] == {"type": "image_url", "image_url": {
        "url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}
    assert content[2] == {"type": "image_url",
                          "image_url": {"url": "https://example.org/fig2.jpg"}}


def test_images_are_part_of_the_cache_key(tmp_path):
    a = [Message("user", "q", ("a.png",))]
    b = [Message("user", "q", ("b.png",))]
    assert request_key("m", a, GenerateConfig(), 0) != request_key("m", b, GenerateConfig(), 0)


def test_bad_images(tmp_path):
    with pytest.raises(InputError, match="cannot read the image"):
        Message("user", "q", (str(tmp_path / "missing.png"),)).to_openai()
    txt = tmp_path / "notes.txt"
    txt.write_text("hi")
    with pytest.raises(InputError, match="not an image"):
        Message("user", "q", (str(txt),)).to_openai()


def test_a_local_image_is_checked_before_it_is_read(tmp_path):
    # the type comes from the bytes, not the name
    named_txt = tmp_path / "figure.txt"
    named_txt.write_bytes(PNG)
    assert image_url(str(named_txt)) == "data:image/png;base64," + base64.b64encode(PNG).decode()
    fake = tmp_path / "fake.png"
    fake.write_text("#!/bin/sh\necho not a picture\n")
    with pytest.raises(InputError, match="not an image"):
        image_url(str(fake))
    # devices, FIFOs and folders are never read (a FIFO would wait for a writer for ever,
    # /dev/zero would fill the memory)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo), str(tmp_path)):
        with pytest.raises(InputError, match="not a regular file"):
            image_url(path)
    big = tmp_path / "big.png"
    with big.open("wb") as f:
        f.write(PNG)
        f.truncate(MAX_IMAGE_BYTES + 1)  # sparse: nothing near that size is written
    with pytest.raises(InputError, match="over the image limit"):
        image_url(str(big))
    for name, head in [("a.jpg", b"\xff\xd8\xff\xe0"), ("a.gif", b"GIF89a"),
                       ("a.webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ")]:
        (tmp_path / name).write_bytes(head + b"\x00" * 16)
        assert image_url(str(tmp_path / name)).startswith(
            f"data:image/{name.split('.')[1].replace('jpg', 'jpeg')};base64,")
    assert image_url("https://example.org/a.png") == "https://example.org/a.png"


def test_records_carry_images(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text(json.dumps({"problem": "q", "steps": ["a"], "images": ["fig.png"]}) + "\n"
                 + json.dumps({"problem": "q", "steps": ["a"], "images": "fig.png"}) + "\n")
    good, bad = list(read_examples(str(f)))
    assert good.problem.images == ("fig.png",)
    assert str(bad).endswith(":2: images: must be a list of paths or URLs")
    assert Problem.from_dict(good.problem.to_dict()) == good.problem


@pytest.mark.slow
async def test_a_text_model_refuses_images(embedded_model):
    with pytest.raises(ModelError, match="cannot see images"):
        await embedded_model.generate([Message("user", "q", ("a.png",))], GenerateConfig())
