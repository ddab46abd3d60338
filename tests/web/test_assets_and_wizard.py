"""Front-end assets (htmx from npm, with a working fallback without it) and the wizard's extensibility."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.datastructures import FormData

from occupant.web import static_assets
from occupant.web.forms import Form
from occupant.web.wizard import Step, Wizard
from tests.web.conftest import Console


def test_htmx_is_served_from_the_vendored_npm_copy(console: Console) -> None:
    page = console.get("/occupiers")
    assert '<script src="/static/vendor/htmx.min.js" defer></script>' in page.text
    script = console.get("/static/vendor/htmx.min.js")
    assert script.status_code == 200 and "htmx" in script.text[:2000]
    assert console.get("/static/console.css").status_code == 200


def test_without_htmx_pages_still_work_and_a_warning_is_logged(
    console: Console, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(static_assets, "HTMX", tmp_path / "vendor" / "htmx.min.js")
    monkeypatch.setattr(static_assets, "VENDOR_DIR", tmp_path / "vendor")
    monkeypatch.setattr(static_assets, "VENDORED", [])
    try:
        with caplog.at_level(logging.WARNING, logger="occupant.web.static_assets"):
            static_assets.check()
        assert "npm install" in caplog.text
        page = console.get(f"/occupiers/{console.occupier.id}/users")
        assert page.status_code == 200 and "htmx.min.js" not in page.text
        # Every live control has a plain link or form behind it.
        assert f'action="/occupiers/{console.occupier.id}/users" method="get"' in page.text
        assert f'href="/occupiers/{console.occupier.id}/users/new"' in page.text
    finally:
        static_assets.htmx_available.cache_clear()


def _steps() -> list[Step]:
    return [
        Step("details", "Details", "a.html", ("first_name", "email")),
        Step(
            "groups",
            "Groups",
            "b.html",
            ("group_ids",),
            multi=frozenset({"group_ids"}),
            applies=lambda subject: subject["groups"],
        ),
    ]


def test_a_wizard_step_can_be_added_without_touching_the_others() -> None:
    wizard = Wizard(_steps())
    wizard.add_step(Step("wifi", "Wi-Fi", "c.html", ("wifi_homesite",)), after="details")
    assert [s.key for s in wizard.active({"groups": True})] == ["details", "wifi", "groups"]
    assert [s.key for s in wizard.active({"groups": False})] == ["details", "wifi"]
    with pytest.raises(ValueError):
        wizard.add_step(Step("wifi", "Again", "d.html", ()))


def test_wizard_carries_other_steps_values_and_returns_to_the_step_in_error() -> None:
    wizard = Wizard(_steps())
    steps = wizard.active({"groups": True})
    posted = FormData(
        [("first_name", " Ada "), ("email", "ada@x.example"), ("group_ids", "3"), ("group_ids", "5")]
    )
    values = wizard.read(posted, steps)
    assert values == {"first_name": "Ada", "email": "ada@x.example", "group_ids": ["3", "5"]}

    view = wizard.view(steps, steps[1], Form(values=values))
    assert view.hidden == [("first_name", "Ada"), ("email", "ada@x.example")] and view.is_last

    form = Form(values=values, errors={"email": ["Not valid."]})
    assert wizard.step_with_errors(steps, form, steps[1]).key == "details"
    assert wizard.neighbour(steps, steps[0], -1).key == "details"
