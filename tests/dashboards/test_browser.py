"""The dashboards in Debian's headless chromium, against a real uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import uvicorn
from starlette.applications import Starlette
from support.dashboards import PASSWORD, RANGE, seeded_dsn


@pytest.fixture
def store_dsn(seeded_template: Path, tmp_path: Path) -> str:
    return seeded_dsn(seeded_template, tmp_path)


@pytest.fixture
def server(store: Any, app: Starlette) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


def watched(page: Any, *, responses: bool = True) -> list[str]:
    """What went wrong on ``page``: console errors, uncaught exceptions, and (unless
    ``responses`` is off) any answer of 400 or more."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    if responses:
        page.on("response",
                lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return errors


@pytest.mark.browser
def test_login_charts_and_click_to_filter(server: str, browser: Any, artifacts: Any) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1800}, locale="en-US")
    page = context.new_page()
    errors = watched(page)
    try:
        page.goto(f"{server}/dashboards/overview?{urlencode(RANGE)}")
        assert "/dashboards/login" in page.url
        page.fill("input[name=username]", "marketing")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#chart-series .js-plotly-plot, #chart-series.js-plotly-plot")
        assert urlsplit(page.url).path == "/dashboards/overview"
        assert page.locator(".js-plotly-plot").count() >= 1
        pageviews_before = page.inner_text("[data-kpi=pageviews] dd")
        link = page.locator("#panel-bd_channel a.filter-link").first
        channel = link.inner_text()
        link.click()
        page.wait_for_load_state("load")
        page.wait_for_selector("#active-filters")
        # The row reads as what the channel is; the filter keeps its stored code.
        from dashboards.format import value_label

        code = parse_qs(urlsplit(page.url).query)["f.channel"][0]
        assert value_label("channel", code, "en") == channel != code
        assert page.inner_text("[data-kpi=pageviews] dd") != pageviews_before
        page.wait_for_selector("#chart-series .js-plotly-plot, #chart-series.js-plotly-plot")
        page.screenshot(path=str(artifacts / "dashboards.png"), full_page=True)
        page.goto(f"{server}/dashboards/consent?{urlencode(RANGE)}")
        page.wait_for_selector("#chart-coverage .js-plotly-plot, #chart-coverage.js-plotly-plot")
        assert page.locator(".js-plotly-plot").count() == 4
        page.screenshot(path=str(artifacts / "dashboards-consent.png"), full_page=True)
        assert errors == []
    finally:
        context.close()


@pytest.mark.browser
def test_engagement_page_and_an_interaction_filter(server: str, browser: Any,
                                                    artifacts: Any) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1800}, locale="en-US")
    page = context.new_page()
    errors = watched(page)
    try:
        page.goto(f"{server}/dashboards/engagement?{urlencode(RANGE)}")
        page.fill("input[name=username]", "marketing")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#panel-engagement")
        assert urlsplit(page.url).path == "/dashboards/engagement"
        visits_all = page.inner_text("[data-kpi=visits] dd")
        median = page.inner_text("[data-kpi=duration_median] dd")
        assert median.endswith("s") and median != "–"
        page.screenshot(path=str(artifacts / "dashboards-engagement.png"), full_page=True)
        # The visits in which someone tapped the phone number: every panel follows.
        page.locator("#panel-bd_interaction a.filter-link", has_text="Phone tap").first.click()
        page.wait_for_load_state("load")
        page.wait_for_selector("#active-filters")
        assert parse_qs(urlsplit(page.url).query)["f.interaction"] == ["tel"]
        tapped = page.inner_text("[data-kpi=visits] dd")
        assert int(tapped.replace(",", "")) < int(visits_all.replace(",", ""))
        assert page.locator("#panel-bd_tel_page td").count() > 0
        assert errors == []
    finally:
        context.close()


@pytest.mark.browser
def test_every_page_in_japanese_fits_a_phone(server: str, browser: Any, artifacts: Any) -> None:
    """As a manager reads it: Japanese, a 390 px phone, every page the admin may open."""
    from dashboards.panels import PAGES

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP",
                                  device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = watched(page)
    try:
        page.goto(f"{server}/dashboards/overview?{urlencode(RANGE)}")
        assert page.inner_text("h1") == "ログイン"
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#panel-kpis")
        for pid, p in PAGES.items():
            page.goto(f"{server}/dashboards/{pid}?{urlencode(RANGE)}")
            page.wait_for_load_state("load")
            if page.locator(".chart").count():
                page.wait_for_selector(".js-plotly-plot")
            assert page.evaluate("document.documentElement.lang") == "ja"
            assert p.title.ja in page.inner_text("nav")
            width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            assert width[0] <= width[1], (pid, width)
            # Figures and values read in Japanese; no code or English label in sight.
            text = page.inner_text("main")
            for english in ("Visitors", "Pageviews", "Nothing to show", "prev –", "(other)",
                            "(not set)", "Period", "Apply"):
                assert english not in text, (pid, english)
            page.screenshot(path=str(artifacts / f"dashboards-ja-390-{pid}.png"),
                            full_page=True)
        overview = page.goto(f"{server}/dashboards/overview?{urlencode(RANGE)}")
        assert overview is not None and overview.status == 200
        page.wait_for_selector("#chart-series .js-plotly-plot, #chart-series.js-plotly-plot")
        assert "スマートフォン" in page.inner_text("#panel-bd_device_type")
        ticks = page.locator("#chart-series .xtick text").all_text_contents()
        assert ticks and all(t.startswith("2026/") for t in ticks)  # the year is never clipped
        # A filter set saved under a name, then picked from the list on an unfiltered page.
        page.goto(f"{server}/dashboards/overview?{urlencode({**RANGE, 'f.channel': 'social'})}")
        page.fill("#segment-save input[name=name]", "SNSからの訪問")
        page.click("#segment-save button")
        page.wait_for_load_state("load")
        page.goto(f"{server}/dashboards/overview?{urlencode(RANGE)}")
        page.select_option("#segment", label="SNSからの訪問")
        page.click("#view-form button[type=submit]")
        page.wait_for_selector("#active-filters")
        assert "流入元 = SNS" in page.inner_text("#active-filters")
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        page.screenshot(path=str(artifacts / "dashboards-ja-390-segment.png"))
        # The language link switches, and the choice stays for the next page.
        page.click("a.lang")
        page.wait_for_load_state("load")
        assert page.evaluate("document.documentElement.lang") == "en"
        page.goto(f"{server}/dashboards/engagement?{urlencode(RANGE)}")
        assert "Engaged time per visit" in page.inner_text("#panel-engagement")
        assert errors == []
    finally:
        context.close()


@pytest.mark.browser
def test_the_realtime_panel_refreshes_itself(server: str, store: Any, browser: Any) -> None:
    from support.dashboards import insert_events, present

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP")
    page = context.new_page()
    errors = watched(page, responses=False)
    try:
        page.goto(f"{server}/dashboards/overview")
        page.fill("input[name=username]", "marketing")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#panel-realtime .below-k")  # the seeded days are long past
        page.wait_for_load_state("load")  # app.js, which refreshes the panel, has run
        insert_events(store, present("rt", 6, path="/treatments/hyaluronic"))
        # The tab comes back into view: the panel asks again (as every 30 s), and only it
        # changes: the page is not reloaded.
        page.evaluate("window.marker = 1; document.dispatchEvent(new Event('visibilitychange'))")
        page.wait_for_selector("#panel-realtime strong")
        assert page.inner_text("#panel-realtime strong") == "6"
        assert "/treatments/hyaluronic" in page.inner_text("#panel-realtime")
        assert page.evaluate("window.marker") == 1
        assert errors == []
    finally:
        context.close()


@pytest.mark.browser
def test_a_goal_and_a_funnel_made_on_a_phone_in_japanese(server: str, browser: Any,
                                                        artifacts: Any) -> None:
    """As the clinic's marketing staff would: on a phone, in Japanese, define goals and a
    funnel through the forms, read them computed, and look at them through a saved segment."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP",
                                  device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = watched(page)

    def fits() -> None:
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), page.url

    try:
        page.goto(f"{server}/dashboards/goals?{urlencode(RANGE)}")
        page.fill("input[name=username]", "marketing")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#goal-add")
        page.wait_for_load_state("load")  # the page's script, after plotly's
        assert "目標はまだありません" in page.inner_text("#panel-goals")
        # Only the chosen kind's fields show.
        page.select_option("#goal-kind", "interaction")
        assert page.is_visible("#goal-add fieldset[data-kind=interaction]")
        assert not page.is_visible("#goal-add fieldset[data-kind=page]")
        page.fill("#goal-add input[name=name]", "LINE友だち追加")
        page.select_option("#goal-add select[name=interaction]", "app")
        page.fill("#goal-add input[name=target]", "line")
        page.click("#goal-add button[type=submit]")
        page.wait_for_selector("#goal-shown")
        page.wait_for_load_state("load")
        page.click("#goal-setup summary")
        page.select_option("#goal-kind", "event")
        page.fill("#goal-add input[name=name]", "カウンセリング予約")
        page.fill("#goal-add input[name=event]", "reservation")
        page.click("#goal-add button[type=submit]")
        page.wait_for_selector("#chart-goal_series .js-plotly-plot, "
                               "#chart-goal_series.js-plotly-plot")
        rows = page.locator("#panel-goals tbody tr").all_inner_texts()
        cells = [r.split("\t") for r in rows]
        assert [c[0] for c in cells] == ["LINE友だち追加", "カウンセリング予約"], rows
        assert all("–" not in c[1:4] for c in cells), rows  # conversions, visitors, rate
        assert cells[1][4].startswith("¥") and cells[0][4] == "–"  # only a booking has worth
        assert "流入元" in page.inner_text("#panel-goal_channel")
        fits()
        page.screenshot(path=str(artifacts / "dashboards-ja-390-goals.png"), full_page=True)
        # A funnel of two pages and a goal.
        page.goto(f"{server}/dashboards/funnels?{urlencode(RANGE)}")
        page.fill("#funnel-add input[name=name]", "施術から予約まで")
        page.fill("#funnel-add input[name=step1_path]", "/treatments/*")
        page.fill("#funnel-add input[name=step2_path]", "/reservation")
        page.select_option("#funnel-add select[name=step3_goal]", label="カウンセリング予約")
        page.click("#funnel-add button[type=submit]")
        page.wait_for_selector("#chart-funnel_chart .js-plotly-plot, "
                               "#chart-funnel_chart.js-plotly-plot")
        steps = page.locator("#panel-funnel tbody tr").all_inner_texts()
        assert [s.split("\t")[0] for s in steps] == [
            "1. /treatments/*", "2. /reservation", "3. カウンセリング予約"]
        first = int(steps[0].split("\t")[1].replace(",", ""))
        assert first > 0 and "–" not in steps[1]
        fits()
        page.screenshot(path=str(artifacts / "dashboards-ja-390-funnel.png"), full_page=True)
        # A saved segment narrows the funnel.
        page.goto(f"{server}/dashboards/funnels?{urlencode({**RANGE, 'f.channel': 'search'})}")
        page.fill("#segment-save input[name=name]", "検索から")
        page.click("#segment-save button")
        page.wait_for_load_state("load")
        page.goto(f"{server}/dashboards/funnels?{urlencode(RANGE)}")
        page.select_option("#segment", label="検索から")
        page.click("#view-form button[type=submit]")
        page.wait_for_selector("#active-filters")
        narrowed = page.locator("#panel-funnel tbody tr").first.inner_text()
        assert int(narrowed.split("\t")[1].replace(",", "")) < first
        fits()
        page.screenshot(path=str(artifacts / "dashboards-ja-390-funnel-segment.png"),
                        full_page=True)
        assert errors == []
    finally:
        context.close()
