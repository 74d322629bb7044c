"""Great Expectations 1.x (its own venv): an ephemeral context, a pandas data source, the suite.

Timed, like a user's one-off validation: creating the ephemeral context, the data source,
the batch definition, the expectation suite and the validation definition, and running it
on the in-memory frame. Importing Great Expectations is not timed (reported apart).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w

started = time.perf_counter()
import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402

IMPORT_S = time.perf_counter() - started

# (expectation type, column) -> the bench's name for that check.
CANONICAL = {
    ("expect_column_values_to_not_be_null", "id"): "id_not_null",
    ("expect_column_values_to_be_unique", "id"): "id_unique",
    ("expect_column_values_to_be_between", "amount"): "amount_range",
    ("expect_column_values_to_be_in_set", "category"): "category_set",
    ("expect_column_values_to_match_regex", "email"): "email_regex",
    ("expect_table_row_count_to_be_between", None): "row_count",
    ("expect_column_values_to_not_be_null", "ts"): "ts_not_null",
    ("expect_column_mean_to_be_between", "amount"): "amount_mean",
}
LAST: dict[str, Any] = {}


def expectations() -> list[Any]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="id"),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToBeBetween(
            column="amount", min_value=w.AMOUNT_MIN, max_value=w.AMOUNT_MAX
        ),
        gxe.ExpectColumnValuesToBeInSet(column="category", value_set=w.CATEGORIES),
        gxe.ExpectColumnValuesToMatchRegex(column="email", regex=w.EMAIL_RE),
        gxe.ExpectTableRowCountToBeBetween(min_value=w.ROWS_MIN, max_value=w.ROWS_MAX),
        gxe.ExpectColumnValuesToNotBeNull(column="ts"),
        gxe.ExpectColumnMeanToBeBetween(
            column="amount", min_value=w.MEAN_MIN, max_value=w.MEAN_MAX
        ),
    ]


def validate(df: Any) -> dict[str, int | None]:
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas(name="orders_source")
    batch = source.add_dataframe_asset(name="orders").add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name="orders"))
    for expectation in expectations():
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="orders_validation", data=batch, suite=suite)
    )
    run_started = time.perf_counter()
    outcome = definition.run(batch_parameters={"dataframe": df})
    LAST["run_only_s"] = round(time.perf_counter() - run_started, 3)
    LAST["success"] = bool(outcome.success)
    failures: dict[str, int | None] = {}
    for result in outcome.results:
        if result.success:
            continue
        config = result.expectation_config
        key = (config.type, config.kwargs.get("column"))
        count = result.result.get("unexpected_count")
        failures[CANONICAL.get(key, f"{key[0]}:{key[1]}")] = None if count is None else int(count)
    return failures


if __name__ == "__main__":
    args = w.runner_args()
    w.run_calls(
        "great_expectations",
        gx.__version__,
        validate,
        import_s=IMPORT_S,
        calls=args.calls,
        rows=args.rows,
        extra={"report": LAST, "pandas": w.library_version("pandas")},
    )
