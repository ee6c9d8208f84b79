"""The shared page layout: error pages in the layout (HTML for people, JSON for the API),
the stylesheet, and the form, table and figure macros every page builds on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from jinja2 import Environment
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from adserver.app import AdServer, create_app
from tests.conftest import make_settings


async def _boom(request: Request) -> None:
    raise RuntimeError("secret detail that must not reach the reader")


@pytest.fixture
def app(sqlite_url: str, tmp_path: Path) -> AdServer:
    app = create_app(make_settings(sqlite_url, 8000, tmp_path / "spool"))
    app.router.routes.append(Route("/boom", _boom))
    app.router.routes.append(Route("/v1/boom", _boom))
    return app


@pytest.fixture
def client(app: AdServer) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def env(app: AdServer) -> Environment:
    return app.templates.env


def test_missing_page_is_a_404_page_in_the_layout(client: TestClient) -> None:
    answer = client.get("/no/such/page?x=<b>")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert '<html lang="en">' in html
    assert "<title>Page not found · adserver</title>" in html
    assert '<link rel="stylesheet" href="/static/css/app.css">' in html
    assert "<code>/no/such/page</code>" in html
    assert "<script" not in html  # the pages' CSP allows no inline script


def test_a_500_page_hides_the_cause(client: TestClient) -> None:
    answer = client.get("/boom")
    assert answer.status_code == 500
    assert "Something went wrong" in answer.text
    assert "secret detail" not in answer.text


def test_api_errors_keep_the_contract_shape(client: TestClient) -> None:
    missing = client.get("/v1/no-such-route")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    broken = client.get("/v1/boom")
    assert broken.status_code == 500
    assert broken.json() == {"error": "Internal server error"}
    assert client.get("/static/nothing.css").headers["content-type"].startswith("text/plain")


def test_method_not_allowed_is_a_page_too(client: TestClient) -> None:
    answer = client.request("OPTIONS", "/login")
    assert answer.status_code == 405
    assert "<title>Not possible here · adserver</title>" in answer.text


def test_forbidden_page(env: Environment) -> None:
    html = env.get_template("errors/403.html").render(status=403, heading="", message="")
    assert "<title>Not allowed · adserver</title>" in html
    assert "may not open this page" in html


def test_stylesheet_is_served_and_needs_no_cdn(client: TestClient) -> None:
    css = client.get("/static/css/app.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "http://" not in css.text and "https://" not in css.text and "@import" not in css.text
    assert "@media (max-width: 640px)" in css.text


FORM_PAGE = """
{% extends "layout.html" %}
{% from "macros/forms.html" import input, select, checkboxes, checkbox, textarea, csrf_field,
   error_summary, submit %}
{% block page_name %}Edit thing{% endblock %}
{% block main %}
<form method="post" class="stacked">
  {{ csrf_field("tok123") }}
  {{ error_summary(form) }}
  {{ input(form, "name", "Name", required=True, help="Shown in reports") }}
  {{ select(form, "pacing", "Pacing", [("even", "Even"), ("asap", "As fast as possible")]) }}
  {{ checkboxes(form, "slots", "Slots", [(1, "Top"), (2, "Below")]) }}
  {{ checkbox(form, "roadblock", "Roadblock") }}
  {{ textarea(form, "html", "HTML") }}
  {{ submit("Save") }}
</form>
{% endblock %}
"""


def test_form_macros_keep_values_and_place_errors_beside_fields(env: Environment) -> None:
    form = {
        "values": {
            "name": "<Spring>",
            "pacing": "asap",
            "slots": ["2"],
            "roadblock": True,
            "html": "<p>x</p>",
        },
        "errors": {"name": "must not be empty", "_form": "someone else saved it first"},
    }
    html = env.from_string(FORM_PAGE).render(form=form, flashes=[("error", "Not saved")])
    assert "<title>Edit thing · adserver</title>" in html
    assert '<input type="hidden" name="csrf_token" value="tok123">' in html
    name_input = re.search(r'<input id="f-name"[^>]*>', html)
    assert name_input is not None
    assert 'value="&lt;Spring&gt;"' in name_input.group(0)
    assert 'aria-invalid="true"' in name_input.group(0)
    assert 'aria-describedby="f-name-error f-name-help"' in name_input.group(0)
    assert '<p class="field-error" id="f-name-error">must not be empty</p>' in html
    assert '<label for="f-name">Name' in html
    assert '<option value="asap" selected>' in html
    assert 'name="slots" value="2" checked' in html
    assert 'name="slots" value="1" checked' not in html
    assert 'id="f-roadblock" name="roadblock" value="1" checked' in html
    assert "&lt;p&gt;x&lt;/p&gt;</textarea>" in html
    assert "someone else saved it first" in html
    assert 'class="flash flash-error" role="alert">Not saved' in html


def test_table_pager_and_figures(env: Environment) -> None:
    template = env.from_string(
        '{% from "macros/tables.html" import table, empty_row, pager, filter_bar %}'
        '{% from "macros/figures.html" import figure, figures, progress, status_badge %}'
        "{% call table(['Name', 'Impressions'], numeric=[1]) %}{{ empty_row(2, 'None yet') }}"
        "{% endcall %}{{ pager(page) }}"
        "{{ filter_bar([('status', 'Status', [('active', 'Active')], 'active')]) }}"
        "{% call figures() %}{{ figure('CTR', '1.2%', change=-0.25) }}{% endcall %}"
        "{{ progress(250, 1000, 'Impressions goal') }}{{ status_badge('pending') }}"
    )
    html = template.render(page={"first_url": "/admin/x", "next_url": "/admin/x?after=9"})
    assert '<th scope="col" class="num">Impressions</th>' in html
    assert '<td colspan="2">None yet</td>' in html
    assert 'href="/admin/x?after=9" rel="next"' in html
    assert '<option value="active" selected>' in html
    assert "▼ -25.0%" in html and 'class="figure-change bad"' in html
    assert '<progress value="250" max="1000" aria-label="Impressions goal">' in html
    assert "250 of 1000" in html
    assert '<span class="badge badge-pending">pending</span>' in html
    last = template.render(page={"first_url": None, "next_url": None})
    assert "pager" not in last


def test_generic_schema_words_are_said_plainly() -> None:
    from adserver.services.errors import ServiceError
    from adserver.web.pages.admin.common import refused

    error = ServiceError(
        "invalid",
        {
            "name": "String should have at least 1 character",
            "goal.total": "Input should be greater than or equal to 1",
            "weight": "Input should be a valid integer, unable to parse string as an integer",
            "goal": "a goal needs a total, a daily figure, or both",
            "mystery": "unknown field",
        },
    )
    form = refused({}, error, ["name", "goal_total", "goal_kind", "weight"], {"goal": "goal_kind"})
    assert form.errors["name"] == "must not be empty"
    assert form.errors["goal_total"] == "must be at least 1"
    assert form.errors["weight"] == "must be a whole number"
    assert form.errors["goal_kind"] == "a goal needs a total, a daily figure, or both"
    assert form.errors["_form"] == "mystery: unknown field"
    assert form.status == 422
