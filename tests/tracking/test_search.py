"""The run search language, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

import headrace as hr
from headrace.core.search import SearchSyntaxError, parse_filter
from headrace.core.tracking import TrackingError
from headrace.runtime.workspace import Workspace
from headrace.store.tracking import ExperimentNotFoundError


@pytest.fixture
def runs(ws: Workspace) -> dict[str, str]:
    """Twelve runs in two experiments: name → id."""
    made = {}
    for i in range(12):
        experiment = "churn" if i < 8 else "ads"
        with hr.start_run(experiment, name=f"r{i:02d}", workspace=ws) as run:
            hr.log_params({"lr": [0.001, 0.01, 0.1][i % 3], "model": "gbm" if i % 2 else "logreg"})
            hr.log_metrics({"auc": (70 + i) / 100, "loss": (20 - i) / 20})
            if i % 4 == 0:
                hr.set_tag("team", "growth" if i < 6 else "Ads Team")
            made[run.name or ""] = run.id
    return made


def names(page: object) -> list[str]:
    return [r.name for r in page.runs]  # type: ignore[attr-defined]


def test_filters_over_metrics_params_tags_and_attributes(
    ws: Workspace, runs: dict[str, str]
) -> None:
    search = ws.store.tracking.search
    assert names(search(filter="metrics.auc >= 0.79", order_by="metrics.auc")) == [
        "r09",
        "r10",
        "r11",
    ]
    both = search(filter="params.model = 'gbm' AND metrics.auc < 0.75", order_by="a.name")
    assert names(both) == ["r01", "r03"]
    either = search(filter="tags.team = 'growth' OR params.lr > 0.05", order_by="a.name")
    assert names(either) == ["r00", "r02", "r04", "r05", "r08", "r11"]
    grouped = search(
        filter="(tags.team = 'growth' OR params.lr > 0.05) AND params.model = 'logreg'",
        order_by="attributes.name",
    )
    assert names(grouped) == ["r00", "r02", "r04", "r08"]
    assert names(search(filter="params.lr IN (0.001, 0.1)", order_by="a.name"))[:4] == [
        "r00",
        "r02",
        "r03",
        "r05",
    ]
    assert len(search(filter="params.model NOT IN ('gbm')").runs) == 6
    assert names(search(filter="tags.team ILIKE 'ads%'")) == ["r08"]
    assert len(search(filter="tags.team IS NULL").runs) == 9
    assert len(search(filter="metrics.auc IS NOT NULL AND attributes.experiment = 'ads'").runs) == 4
    assert names(search(filter=f"attributes.run_id = '{runs['r03']}'")) == ["r03"]
    assert len(search(filter="attributes.status = 'success'").runs) == 12
    assert len(search(experiments_=["churn"]).runs) == 8


def test_ordering_paging_and_the_columns_loaded(ws: Workspace, runs: dict[str, str]) -> None:
    search = ws.store.tracking.search
    seen: list[str] = []
    token = None
    while True:
        page = search(order_by="metrics.loss ASC", max_results=5, page_token=token)
        seen.extend(names(page))
        token = page.next_page_token
        if token is None:
            break
    assert seen == [f"r{i:02d}" for i in reversed(range(12))]
    # Params order as numbers (0.1 after 0.01), then by name.
    ordered = search(order_by="params.lr DESC, attributes.name", max_results=3)
    assert names(ordered) == ["r02", "r05", "r08"]
    narrow = search(filter="metrics.auc > 0.8", columns=["metrics.auc", "params.model"])
    assert narrow.runs and all(set(r.metrics) == {"auc"} for r in narrow.runs)
    assert all(set(r.params) == {"model"} and not r.tags for r in narrow.runs)
    every = search(filter="metrics.auc > 0.8", columns=["params.*"])
    assert all(set(r.params) == {"lr", "model"} and not r.metrics for r in every.runs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.auc >", "expected a value but found the end"),
        ("auc > 0.8", "expected a key such as metrics.auc"),
        ("metrics.auc ~ 0.8", "cannot read '~ 0.8' at position 13"),
        ("metrics.auc = 'high'", "compares with numbers"),
        ("attributes.stauts = 'x'", "did you mean 'status'"),
        ("params.a = 1 AND", "expected a key"),
        ("(params.a = 1", "expected ')'"),
        ("params.a LIKE 3", "LIKE needs a quoted pattern"),
        ("params.a IN 3", "'(' and a list of values"),
        ("colour.a = 1", "is not a key"),
    ],
)
def test_syntax_errors_say_where_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(SearchSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_filter(text)


def test_bad_search_arguments(ws: Workspace, runs: dict[str, str]) -> None:
    search = ws.store.tracking.search
    with pytest.raises(ExperimentNotFoundError, match="did you mean 'churn'"):
        search(experiments_=["chrun"])
    with pytest.raises(TrackingError, match="not one this store gave out"):
        search(page_token="garbage")
    with pytest.raises(TrackingError, match="max_results"):
        search(max_results=0)
    with pytest.raises(SearchSyntaxError, match="ASC or DESC"):
        search(order_by="metrics.auc UP")


def test_the_python_api_searches_too(ws: Workspace, runs: dict[str, str]) -> None:
    page = hr.search_runs(
        "metrics.auc > 0.78",
        experiments=["churn", "ads"],
        order_by="metrics.auc DESC",
        max_results=2,
        workspace=ws,
    )
    assert names(page) == ["r11", "r10"] and page.next_page_token is not None
