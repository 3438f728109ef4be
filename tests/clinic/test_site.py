"""The clinic site on its own: pages, languages, search escaping, reservation validation."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from clinic.content import TREATMENTS, policy_text
from clinic.site import create_site, search_treatments, validate_reservation

SHARED = Path(__file__).resolve().parents[3] / "shared"
SHARED_POLICY = SHARED / "design" / "clinic-privacy-policy.txt"


@pytest.fixture
def client() -> TestClient:
    # A browser sends Origin on every POST; the site refuses a form that cannot show one.
    return TestClient(create_site(), headers={"origin": "http://testserver"})


def good_form(**overrides: str) -> dict[str, str]:
    form = {
        "name": "山田 花子",
        "phone": "090-1234-5678",
        "email": "hanako@example.jp",
        "treatment": "futae",
        "date": (date.today() + timedelta(days=10)).isoformat(),
    }
    form.update(overrides)
    return form


@pytest.mark.parametrize(
    ("path", "lang", "text"),
    [
        ("/", "ja", "二重整形"),
        ("/en/", "en", "Double eyelid"),
        ("/treatments/futae", "ja", "埋没法"),
        ("/treatments/hyaluronic", "ja", "ヒアルロン酸"),
        ("/treatments/datsumo", "ja", "医療脱毛"),
        ("/en/treatments/datsumo", "en", "hair removal"),
        ("/search?q=脱毛", "ja", "医療脱毛"),
        ("/reservation", "ja", "希望日"),
        ("/en/reservation", "en", "Preferred date"),
        ("/lp/futae-spring?utm_source=google&utm_medium=cpc&gclid=abc", "ja", "春の二重"),
        ("/privacy", "ja", "プライバシーポリシー"),
        ("/en/privacy", "en", "Privacy policy"),
        ("/?lang=en", "en", "Treatments"),
    ],
)
def test_each_page_renders_in_its_language(
    client: TestClient, path: str, lang: str, text: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert f'<html lang="{lang}">' in response.text
    assert text in response.text
    # The way back to the consent choices is on every page.
    assert 'href="/_consent/preferences' in response.text


def test_unknown_pages_are_localised_404s(client: TestClient) -> None:
    for path in ("/treatments/nope", "/lp/nope", "/no-such-page"):
        response = client.get(path)
        assert response.status_code == 404
        assert "ページが見つかりません" in response.text
    assert client.get("/en/treatments/nope").status_code == 404


def test_language_switch_points_at_the_same_page(client: TestClient) -> None:
    ja = client.get("/treatments/futae?x=1").text
    en = client.get("/en/treatments/futae").text
    assert 'href="/en/treatments/futae?x=1"' in ja
    assert 'href="/treatments/futae"' in en


def test_static_css_is_served(client: TestClient) -> None:
    response = client.get("/static/clinic.css")
    assert response.status_code == 200
    assert "text/css" in response.headers["content-type"]


@pytest.mark.parametrize("path", ["/", "/en", "/treatments/" + TREATMENTS[0].slug, "/reservation"])
def test_every_page_carries_each_interaction_the_beacon_reports(
        client: TestClient, path: str) -> None:
    """A person trying the demo can try every row of docs/capture.md's interaction table:
    a phone tap, an e-mail link, LINE and Instagram, an outbound booking site, a download."""
    html = client.get(path).text
    for href in ('href="tel:', 'href="mailto:', 'href="https://line.me/',
                 'href="https://www.instagram.com/', 'href="https://reserve.example.com/',
                 'href="/static/price-list.pdf"'):
        assert href in html, (path, href)


def test_the_price_list_is_a_real_pdf(client: TestClient) -> None:
    response = client.get("/static/price-list.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-") and response.content.rstrip().endswith(b"%%EOF")


def test_search_finds_treatments_in_either_language() -> None:
    assert [t.slug for t in search_treatments("二重")] == ["futae"]
    assert [t.slug for t in search_treatments("LASER")] == ["datsumo"]
    assert [t.slug for t in search_treatments("ヒアルロン酸 涙袋")] == ["hyaluronic"]
    assert search_treatments("存在しない施術") == []
    assert search_treatments("   ") == []


def test_search_page_escapes_the_query(client: TestClient) -> None:
    response = client.get("/search", params={"q": '<script>alert("x")</script>'})
    assert response.status_code == 200
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;alert" in response.text


def test_search_page_lists_results(client: TestClient) -> None:
    text = client.get("/en/search", params={"q": "eyelid"}).text
    assert 'href="/en/treatments/futae"' in text
    assert 'href="/en/treatments/datsumo"' not in text.split("<main")[1]


def test_privacy_page_shows_the_shipped_policy_and_consent_links(client: TestClient) -> None:
    text = client.get("/privacy").text
    assert "Article 4 (Provision of Personal Information to Third Parties)" in text
    assert 'href="/_consent/external-transmission' in text
    assert 'href="/_consent/preferences' in text


def test_shipped_policy_is_the_shared_design_text() -> None:
    # The policy version is a hash of this text; a drifted copy would be a new version.
    if not SHARED_POLICY.exists():
        pytest.skip("shared design folder not present")
    shipped = hashlib.sha256(policy_text().encode()).hexdigest()
    assert shipped == hashlib.sha256(SHARED_POLICY.read_text(encoding="utf-8").encode()).hexdigest()


def test_valid_reservation_shows_thanks(client: TestClient) -> None:
    response = client.post("/reservation", data=good_form())
    assert response.status_code == 200
    assert "ご予約を受け付けました" in response.text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "お名前"),
        ("name", "x" * 51, "お名前"),
        ("phone", "12345", "電話番号"),
        ("phone", "090-abcd-5678", "電話番号"),
        ("email", "not-an-email", "メールアドレス"),
        ("treatment", "botox", "施術を選択"),
        ("date", "2020-01-01", "希望日"),
        ("date", "tomorrow", "希望日"),
    ],
)
def test_bad_reservation_is_400_with_the_reason(
    client: TestClient, field: str, value: str, message: str
) -> None:
    response = client.post("/reservation", data=good_form(**{field: value}))
    assert response.status_code == 400
    assert message in response.text
    assert 'role="alert"' in response.text


def test_bad_reservation_reason_is_in_english_on_the_english_site(client: TestClient) -> None:
    response = client.post("/en/reservation", data=good_form(email="nope"))
    assert response.status_code == 400
    assert "e-mail address does not look valid" in response.text


def test_reservation_refuses_a_non_form_body(client: TestClient) -> None:
    response = client.post("/reservation", json=good_form())
    assert response.status_code == 400


def test_reservation_refuses_a_cross_origin_post(client: TestClient) -> None:
    response = client.post(
        "/reservation", data=good_form(), headers={"origin": "https://evil.example"}
    )
    assert response.status_code == 403


def test_reservation_refuses_a_post_that_shows_no_origin_at_all() -> None:
    # The one same-origin rule of every state-changing route: no Origin, Sec-Fetch-Site or
    # Referer is refused, as the consent and deletion routes refuse it.
    response = TestClient(create_site()).post("/reservation", data=good_form())
    assert response.status_code == 403
    same_site = TestClient(create_site()).post(
        "/reservation", data=good_form(), headers={"sec-fetch-site": "same-origin"})
    assert same_site.status_code == 200


def test_rejected_form_echoes_values_escaped(client: TestClient) -> None:
    response = client.post("/reservation", data=good_form(name='"><b>x', phone="1"))
    assert response.status_code == 400
    assert '"><b>x' not in response.text
    assert "&#34;&gt;&lt;b&gt;x" in response.text


def test_validation_accepts_full_width_digits_and_rejects_far_dates() -> None:
    today = date(2026, 1, 10)
    values, bad = validate_reservation(good_form(phone="０９０-１２３４-５６７８",
                                                 date="2026-02-01"), today=today)
    assert bad == []
    assert values["phone"] == "090-1234-5678"
    _, bad = validate_reservation(good_form(date="2027-03-01"), today=today)
    assert bad == ["date"]


def test_every_treatment_has_both_languages_and_prices() -> None:
    for treatment in TREATMENTS:
        for locale in ("ja", "en"):
            assert treatment.title[locale] and treatment.summary[locale]
            assert treatment.body[locale] and treatment.downtime[locale]
        assert treatment.prices and all(p.yen > 0 for p in treatment.prices)


def test_footer_link_names_the_page_the_banner_points_to(client: TestClient) -> None:
    # The banner says choices can be changed under 「プライバシー設定」 / "Privacy settings".
    ja = client.get("/treatments/futae").text
    en = client.get("/en/treatments/futae").text
    assert "プライバシー設定(クッキー設定 / Cookie settings)</a>" in ja
    assert "Privacy settings (Cookie settings / クッキー設定)</a>" in en
