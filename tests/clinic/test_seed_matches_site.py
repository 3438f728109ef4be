"""The seeded demo traffic is traffic the demo site could have had: its pages answer, its 404s
do not, and every seeded click is on a link or form the site's pages carry."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from clinic.site import create_site
from dashboards.seed.statements import INTERACTIONS_SQL
from dashboards.seed.traffic import LANDING, NOT_FOUND, PAGES


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_site())


@pytest.mark.parametrize("path", sorted(set(PAGES) | set(LANDING)))
def test_every_seeded_page_is_a_page_of_the_site(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", NOT_FOUND)
def test_every_seeded_404_is_missing_from_the_site(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_every_seeded_click_is_on_a_link_or_form_of_the_site(client: TestClient) -> None:
    html = client.get("/").text + client.get("/reservation").text
    links = set(re.findall(r'href="([^"]+)"', html))
    hosts = {re.sub(r"^https://([^/]+)/.*$", r"\1", u) for u in links if u.startswith("https")}
    forms = set(re.findall(r'<form [^>]*id="([^"]+)"', html))
    clicks = re.findall(r"\('(\w+)', '([^']*)', '([^']*)', '([^']*)'\)", INTERACTIONS_SQL)
    assert {c[0] for c in clicks} >= {"tel", "mailto", "app", "outbound", "download", "form"}
    for name, host, path, target in clicks:
        if name == "tel":
            assert any(u.startswith("tel:") for u in links)
        elif name == "mailto":
            assert any(u.startswith("mailto:") for u in links)
        elif name in ("app", "outbound"):
            assert host in hosts, host
            assert not path or any(u.startswith(f"https://{host}{path}") for u in links)
        elif name == "download":
            assert path in links
        elif name == "form":
            assert target in forms and client.get(path).status_code == 200


def test_a_seeded_reservation_is_worth_what_the_site_says_it_is() -> None:
    from clinic.content import TREATMENTS_BY_SLUG
    from dashboards.seed.traffic import TREATMENT_YEN, TREATMENTS

    assert [TREATMENTS_BY_SLUG[t].prices[0].yen for t in TREATMENTS] == TREATMENT_YEN
