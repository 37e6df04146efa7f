"""The player's banners say when events wait in the buffer and when some were lost."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import dashboards.views.common as common
from dashboards.services import MongoHealth
from fma_platform.producer import ProducerState, ProducerStatus


def _banners_page() -> None:
    from dashboards.views.common import service_banners

    service_banners(events=True)


def _status(state: ProducerState, *, buffered: int = 0, dropped: int = 0) -> ProducerStatus:
    return ProducerStatus(state=state, buffered=buffered, dropped=dropped, sent=10,
                          last_error=None if state == ProducerState.CONNECTED else "NoBrokersAvailable")


@pytest.fixture
def page(monkeypatch):
    def run(status: ProducerStatus) -> AppTest:
        monkeypatch.setattr(common, "mongo_health", lambda: MongoHealth(up=True, error=None))
        monkeypatch.setattr(common, "producer_status", lambda: status)
        return AppTest.from_function(_banners_page).run()
    return run


def test_lost_events_are_reported_even_when_kafka_is_back(page):
    at = page(_status(ProducerState.CONNECTED, dropped=42))
    assert [w.value for w in at.warning] == [
        "42 listening events were lost: the buffer was full while Kafka was away (the oldest were dropped first)."]


def test_buffered_events_are_counted_while_kafka_is_down(page):
    at = page(_status(ProducerState.BUFFERING, buffered=7))
    assert len(at.warning) == 1 and "(7 waiting)" in at.warning[0].value


def test_a_healthy_producer_shows_no_banner(page):
    at = page(_status(ProducerState.CONNECTED))
    assert not at.warning and not at.error and not at.caption
