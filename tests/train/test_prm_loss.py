import math

import pytest
import torch

from criticlab.train.prm import IGNORE, encode_steps, step_loss


def test_step_loss_is_cross_entropy_at_labelled_positions_only():
    # vocab of 4: token 2 = good, token 3 = bad; position 0 is ignored.
    logits = torch.tensor([[[9.0, 9.0, 5.0, -5.0],
                            [0.0, 0.0, 2.0, 0.0],     # labelled good: CE = log(1 + e^-2)
                            [7.0, 0.0, 1.0, 1.0]]])   # labelled bad, a tie: CE = log 2
    labels = torch.tensor([[IGNORE, 1, 0]])
    want = (math.log(1 + math.exp(-2.0)) + math.log(2.0)) / 2
    assert step_loss(logits, labels, good_id=2, bad_id=3).item() == pytest.approx(want)


class Chars:
    """One token per character (ord), enough to check where labels go."""

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


def test_encode_steps_labels_the_last_separator_token():
    ids, labels = encode_steps(Chars(), "Q", ["ab", "c"], "\n\n", [True, False])
    assert ids == [ord(c) for c in "Q\nab\n\nc\n\n"]
    assert labels == [IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, 1, IGNORE, IGNORE, 0]
    ids, labels = encode_steps(Chars(), "Q", ["ab", "c"], "\n\n", [True, False], max_length=7)
    assert labels == [IGNORE] * 5 + [1, IGNORE]
