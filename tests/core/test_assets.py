from __future__ import annotations

import pytest

import headrace as hr
from headrace.core.errors import AssetSignatureError, DefinitionError


def test_asset_stays_a_plain_callable_function() -> None:
    @hr.asset(group="g", tags=["daily", "pii"], owner="ana")
    def doubled(numbers: list[int], *, factor: int = 2) -> list[int]:
        """Numbers times a factor.

        More text that is not the summary.
        """
        return [n * factor for n in numbers]

    assert doubled([1, 2], factor=3) == [3, 6]
    assert doubled.name == "doubled"
    assert doubled.description == "Numbers times a factor."
    assert doubled.tags == ("daily", "pii")
    assert doubled.owner == "ana"
    assert [i.asset for i in doubled.inputs] == ["numbers"]
    assert [(p.name, p.default) for p in doubled.params] == [("factor", 2)]


def test_ins_deps_and_reserved_parameters() -> None:
    @hr.asset(
        partitions=hr.monthly("2013-01", "2013-03"),
        ins={"prev": hr.upstream("total", partition_offset=-1), "src": "raw"},
        deps=["setup"],
    )
    def total(src: int, partition: str, context: object, prev: int | None = None) -> int:
        return src

    assert total.wants_partition and total.wants_context
    assert {(i.parameter, i.asset, i.partition_offset) for i in total.inputs} == {
        ("src", "raw", 0),
        ("prev", "total", -1),
    }
    assert total.upstream_names == ("raw", "setup")


def test_definitions_are_immutable() -> None:
    @hr.asset
    def a() -> int:
        return 1

    with pytest.raises(AttributeError):
        a.name = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(*args): return 1", r"\*args and \*\*kwargs are not allowed"),
        ("def f(**kw): return 1", r"\*args and \*\*kwargs"),
        ("def f(*, n): return n", "param 'n' needs a type annotation or a default"),
        ("def f(partition: str): return 1", "declares no partitions"),
    ],
)
def test_bad_signatures_name_the_asset_and_problem(source: str, message: str) -> None:
    namespace: dict[str, object] = {}
    exec(source, namespace)
    with pytest.raises(AssetSignatureError, match=message) as info:
        hr.asset(namespace["f"])  # type: ignore[arg-type]
    assert info.value.asset == "f"


def test_bad_options_are_refused() -> None:
    def f() -> int:
        return 1

    with pytest.raises(DefinitionError, match="ins names 'x', which is not a parameter"):
        hr.asset(ins={"x": "y"})(f)
    with pytest.raises(DefinitionError, match="io='yaml' is unknown"):
        hr.asset(io="yaml")(f)
    with pytest.raises(DefinitionError, match="timeout must be > 0"):
        hr.asset(timeout=0)(f)
    with pytest.raises(DefinitionError, match="asset name 'a b' is invalid"):
        hr.asset(name="a b")(f)
    with pytest.raises(DefinitionError, match="reserved"):
        hr.asset(name="partition")(f)
    with pytest.raises(DefinitionError, match="partition offset but the asset has no partitions"):

        @hr.asset(ins={"p": hr.upstream("x", partition_offset=-1)})
        def g(p: int) -> int:
            return p

    with pytest.raises(AssetSignatureError, match="give it a default of None"):

        @hr.asset(
            partitions=hr.monthly("2013-01"), ins={"p": hr.upstream("h", partition_offset=-1)}
        )
        def h(p: int) -> int:
            return p

    with pytest.raises(AssetSignatureError, match="only a previous partition can be read"):

        @hr.asset(ins={"me": "k"})
        def k(me: int) -> int:
            return me


def test_retry_policy_backoff() -> None:
    policy = hr.RetryPolicy(max_retries=3, delay=1.0, backoff=2.0, max_delay=3.0)
    assert [policy.delay_before(a) for a in (2, 3, 4)] == [1.0, 2.0, 3.0]
    assert policy.should_retry(1, ValueError()) and policy.should_retry(3, None)
    assert not policy.should_retry(4, ValueError())
    only_io = hr.RetryPolicy(max_retries=2, retry_on=(OSError,))
    assert only_io.should_retry(1, OSError()) and not only_io.should_retry(1, ValueError())
    with pytest.raises(DefinitionError):
        hr.RetryPolicy(max_retries=-1)
    with pytest.raises(DefinitionError):
        hr.RetryPolicy(backoff=0.5)
    assert hr.asset(retry=2, name="r")(lambda: 1).retry == hr.RetryPolicy(max_retries=2)
