from __future__ import annotations

import pytest
from django.core.management import call_command

from oversight import demo
from reviews.models import Decision

pytestmark = pytest.mark.django_db


def test_loading_the_demo_again_does_not_train_the_model_again(monkeypatch, capsys):
    call_command("load_demo")
    decisions = Decision.objects.count()

    def train(data):
        raise AssertionError("the demo model was trained again")

    monkeypatch.setattr(demo, "train", train)
    call_command("load_demo")
    assert "(0 new)" in capsys.readouterr().out
    assert Decision.objects.count() == decisions
