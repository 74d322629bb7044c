"""``@asset``: a plain, typed Python function becomes an immutable asset definition."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from headrace.core.checks import Check, Suite
from headrace.core.errors import AssetSignatureError, DefinitionError
from headrace.core.partitions import PartitionsDefinition

#: Parameter names headrace fills itself instead of loading an upstream asset.
RESERVED_PARAMETERS = frozenset({"context", "partition"})
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
IO_FORMATS = frozenset({"parquet", "json", "text", "bytes", "pickle", "model"})


class _Missing:
    def __repr__(self) -> str:
        return "<required>"


MISSING: Any = _Missing()


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a failing step is tried again.

    Attributes:
        max_retries: retries after the first attempt (0 means a single attempt).
        delay: seconds to wait before the first retry.
        backoff: factor applied to the delay after each retry (exponential backoff).
        max_delay: upper bound of any single wait.
        retry_on: exception types worth retrying; others fail at once.
    """

    max_retries: int = 0
    delay: float = 0.0
    backoff: float = 2.0
    max_delay: float = 300.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise DefinitionError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.delay < 0 or self.max_delay < 0:
            raise DefinitionError("retry delays must be >= 0 seconds")
        if self.backoff < 1:
            raise DefinitionError(f"backoff must be >= 1, got {self.backoff}")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        return float(min(self.max_delay, self.delay * self.backoff ** max(0, attempt - 2)))

    def should_retry(self, attempt: int, exc: BaseException | None) -> bool:
        """Whether a step that failed on ``attempt`` with ``exc`` gets another attempt."""
        if attempt > self.max_retries:
            return False
        return exc is None or isinstance(exc, self.retry_on)


@dataclass(frozen=True, kw_only=True)
class Upstream:
    """An input of an asset: which upstream asset fills a parameter, and how.

    Args:
        asset: the upstream asset's name.
        partition_offset: for partitioned assets, read the upstream's partition this many
            steps away (``-1``: the previous one, e.g. an asset reading its own previous
            partition for a running total). The parameter gets ``None`` past the start.
    """

    asset: str
    partition_offset: int = 0


def upstream(asset: str | AssetSpec, *, partition_offset: int = 0) -> Upstream:
    """Declare which asset fills a parameter, e.g. ``ins={"prev": upstream("x", -1)}``."""
    name = asset.name if isinstance(asset, AssetSpec) else asset
    return Upstream(asset=name, partition_offset=partition_offset)


@dataclass(frozen=True, kw_only=True)
class AssetInput:
    """A parameter of the function bound to an upstream asset."""

    parameter: str
    asset: str
    partition_offset: int = 0
    annotation: Any = None
    optional: bool = False


@dataclass(frozen=True, kw_only=True)
class ParamSpec:
    """A keyword-only parameter: a typed run param with an optional default."""

    name: str
    annotation: Any
    default: Any = MISSING

    @property
    def required(self) -> bool:
        return self.default is MISSING


@dataclass(frozen=True)
class ModelSpec:
    """What makes an asset a model: the registered model's name, and the input parameter
    whose frame gives the model's input signature."""

    name: str
    signature_from: str | None = None


@dataclass(frozen=True, kw_only=True)
class AssetSpec:
    """The immutable definition of an asset. Calling it calls the plain function."""

    name: str
    fn: Callable[..., Any] = field(repr=False, compare=False)
    description: str = ""
    owner: str | None = None
    tags: tuple[str, ...] = ()
    group: str = "default"
    partitions: PartitionsDefinition | None = None
    retry: RetryPolicy | None = None
    timeout: float | None = None
    io: str | None = None
    code_version: str | None = None
    inputs: tuple[AssetInput, ...] = ()
    deps: tuple[str, ...] = ()
    params: tuple[ParamSpec, ...] = ()
    wants_context: bool = False
    wants_partition: bool = False
    return_annotation: Any = None
    source_version: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    primary_key: tuple[str, ...] = ()
    #: Columns holding personal data: masked for roles without ``read_personal``.
    personal: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    #: For a ``@model`` asset: the registered model its versions become versions of.
    model: ModelSpec | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def upstream_names(self) -> tuple[str, ...]:
        """Every asset this one depends on (data inputs first, then order-only deps)."""
        seen: dict[str, None] = {}
        for item in self.inputs:
            if item.asset != self.name:
                seen[item.asset] = None
        for dep in (*self.deps, *self.check_references):
            seen[dep] = None
        return tuple(seen)

    @property
    def check_references(self) -> tuple[str, ...]:
        """Other assets this one's ``references`` checks read (they run before it)."""
        names = (c.reference for c in self.checks if c.reference and c.reference != self.name)
        return tuple(dict.fromkeys(names))

    @property
    def module(self) -> str:
        return getattr(self.fn, "__module__", "") or ""


def _description(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def _bind_signature(
    fn: Callable[..., Any], name: str, ins: Mapping[str, Upstream | str]
) -> tuple[tuple[AssetInput, ...], tuple[ParamSpec, ...], bool, bool, Any]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise AssetSignatureError(
            f"asset {name!r}: cannot read the function's signature", asset=name
        ) from exc
    parameters = signature.parameters
    for key in ins:
        if key not in parameters:
            raise AssetSignatureError(
                f"asset {name!r}: ins names {key!r}, which is not a parameter of "
                f"{fn.__qualname__}({', '.join(parameters)})",
                asset=name,
            )
    inputs: list[AssetInput] = []
    params: list[ParamSpec] = []
    wants_context = wants_partition = False
    for parameter in parameters.values():
        kind = parameter.kind
        if kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise AssetSignatureError(
                f"asset {name!r}: *args and **kwargs are not allowed "
                f"(parameter {parameter.name!r}); name each upstream asset or param",
                asset=name,
            )
        annotation = None if parameter.annotation is parameter.empty else parameter.annotation
        if parameter.name in RESERVED_PARAMETERS and parameter.name not in ins:
            wants_context |= parameter.name == "context"
            wants_partition |= parameter.name == "partition"
            continue
        if kind is parameter.KEYWORD_ONLY:
            default = MISSING if parameter.default is parameter.empty else parameter.default
            if annotation is None and default is MISSING:
                raise AssetSignatureError(
                    f"asset {name!r}: param {parameter.name!r} needs a type annotation or a "
                    "default so its value can be validated",
                    asset=name,
                )
            params.append(
                ParamSpec(
                    name=parameter.name,
                    annotation=annotation if annotation is not None else type(default),
                    default=default,
                )
            )
            continue
        bound = ins.get(parameter.name, parameter.name)
        ref = bound if isinstance(bound, Upstream) else Upstream(asset=str(bound))
        if ref.asset == name and ref.partition_offset >= 0:
            raise AssetSignatureError(
                f"asset {name!r}: parameter {parameter.name!r} reads the asset itself; only a "
                "previous partition can be read (partition_offset=-1)",
                asset=name,
            )
        inputs.append(
            AssetInput(
                parameter=parameter.name,
                asset=ref.asset,
                partition_offset=ref.partition_offset,
                annotation=annotation,
                optional=parameter.default is not parameter.empty,
            )
        )
    return_annotation = (
        None if signature.return_annotation is signature.empty else signature.return_annotation
    )
    return tuple(inputs), tuple(params), wants_context, wants_partition, return_annotation


def _names(items: Iterable[str | AssetSpec], what: str, asset: str) -> tuple[str, ...]:
    out: list[str] = []
    for item in items:
        value = item.name if isinstance(item, AssetSpec) else item
        if not isinstance(value, str) or not value:
            raise DefinitionError(
                f"asset {asset!r}: {what} must be names, got {item!r}", asset=asset
            )
        out.append(value)
    return tuple(out)


def _columns(value: str | Iterable[str], what: str, asset: str) -> tuple[str, ...]:
    columns = (value,) if isinstance(value, str) else tuple(value)
    for column in columns:
        if not isinstance(column, str) or not column:
            raise DefinitionError(
                f"asset {asset!r}: {what} names columns (non-empty strings), got {column!r}"
            )
    return columns


def make_asset(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    owner: str | None = None,
    tags: Iterable[str] = (),
    group: str = "default",
    partitions: PartitionsDefinition | None = None,
    retry: RetryPolicy | int | None = None,
    timeout: float | None = None,
    io: str | None = None,
    code_version: str | None = None,
    ins: Mapping[str, Upstream | str | AssetSpec] | None = None,
    deps: Iterable[str | AssetSpec] = (),
    source_version: Callable[..., Any] | None = None,
    primary_key: str | Iterable[str] = (),
    personal: str | Iterable[str] = (),
    checks: Iterable[Check] = (),
    model: ModelSpec | None = None,
) -> AssetSpec:
    """Build an :class:`AssetSpec` from a function; the decorator's non-magic form."""
    if not callable(fn):
        raise DefinitionError(f"@asset needs a function, got {fn!r}")
    asset_name = name or getattr(fn, "__name__", "")
    if not isinstance(asset_name, str) or not NAME_PATTERN.match(asset_name):
        raise DefinitionError(
            f"asset name {asset_name!r} is invalid: use letters, digits, '_' and '-', "
            "starting with a letter or '_'",
            asset=str(asset_name),
        )
    if asset_name in RESERVED_PARAMETERS:
        raise DefinitionError(
            f"{asset_name!r} is reserved and cannot name an asset", asset=asset_name
        )
    if io is not None and io not in IO_FORMATS:
        raise DefinitionError(
            f"asset {asset_name!r}: io={io!r} is unknown; expected one of {sorted(IO_FORMATS)}",
            asset=asset_name,
        )
    if model is not None:
        if io not in (None, "model"):
            raise DefinitionError(
                f"asset {asset_name!r} is a model; it cannot also declare io={io!r}",
                asset=asset_name,
            )
        io = "model"
    if timeout is not None and not timeout > 0:
        raise DefinitionError(
            f"asset {asset_name!r}: timeout must be > 0 seconds", asset=asset_name
        )
    if source_version is not None and not callable(source_version):
        raise DefinitionError(
            f"asset {asset_name!r}: source_version must be a function returning a string",
            asset=asset_name,
        )
    if partitions is not None and not isinstance(partitions, PartitionsDefinition):
        raise DefinitionError(
            f"asset {asset_name!r}: partitions must be static(...), daily(...) or monthly(...)",
            asset=asset_name,
        )
    policy = RetryPolicy(max_retries=retry) if isinstance(retry, int) else retry
    normalised_ins: dict[str, Upstream | str] = {}
    for key, value in (ins or {}).items():
        if isinstance(value, AssetSpec):
            normalised_ins[key] = Upstream(asset=value.name)
        elif isinstance(value, Upstream | str):
            normalised_ins[key] = value
        else:
            raise DefinitionError(
                f"asset {asset_name!r}: ins[{key!r}] must be an asset name or upstream(...)",
                asset=asset_name,
            )
    inputs, params, wants_context, wants_partition, returns = _bind_signature(
        fn, asset_name, normalised_ins
    )
    for item in inputs:
        if item.partition_offset and partitions is None:
            raise AssetSignatureError(
                f"asset {asset_name!r}: parameter {item.parameter!r} uses a partition offset "
                "but the asset has no partitions",
                asset=asset_name,
            )
        if item.asset == asset_name and not item.optional:
            raise AssetSignatureError(
                f"asset {asset_name!r}: parameter {item.parameter!r} reads the previous "
                "partition, which the first partition lacks; give it a default of None",
                asset=asset_name,
            )
    if (
        model is not None
        and model.signature_from is not None
        and model.signature_from not in {item.parameter for item in inputs}
    ):
        raise AssetSignatureError(
            f"model asset {asset_name!r}: signature_from={model.signature_from!r} is not "
            f"one of its inputs ({', '.join(i.parameter for i in inputs) or 'none'})",
            asset=asset_name,
        )
    if wants_partition and partitions is None:
        raise AssetSignatureError(
            f"asset {asset_name!r} takes a 'partition' parameter but declares no partitions",
            asset=asset_name,
        )
    tag_tuple = tuple(sorted(set(tags)))
    for tag in tag_tuple:
        if not isinstance(tag, str) or not NAME_PATTERN.match(
            tag.replace(":", "_").replace("=", "_")
        ):
            raise DefinitionError(f"asset {asset_name!r}: tag {tag!r} is invalid", asset=asset_name)
    if not NAME_PATTERN.match(group):
        raise DefinitionError(f"asset {asset_name!r}: group {group!r} is invalid", asset=asset_name)
    return AssetSpec(
        name=asset_name,
        fn=fn,
        description=_description(fn) if description is None else description,
        owner=owner,
        tags=tag_tuple,
        group=group,
        partitions=partitions,
        retry=policy,
        timeout=timeout,
        io=io,
        code_version=code_version,
        inputs=inputs,
        deps=_names(deps, "deps", asset_name),
        params=params,
        wants_context=wants_context,
        wants_partition=wants_partition,
        return_annotation=returns,
        source_version=source_version,
        primary_key=(primary_key,) if isinstance(primary_key, str) else tuple(primary_key),
        personal=_columns(personal, "personal", asset_name),
        checks=Suite(asset_name, checks).checks,
        model=model,
    )


@overload
def asset(fn: Callable[..., Any], /) -> AssetSpec: ...


@overload
def asset(
    *,
    name: str | None = ...,
    description: str | None = ...,
    owner: str | None = ...,
    tags: Iterable[str] = ...,
    group: str = ...,
    partitions: PartitionsDefinition | None = ...,
    retry: RetryPolicy | int | None = ...,
    timeout: float | None = ...,
    io: str | None = ...,
    code_version: str | None = ...,
    ins: Mapping[str, Upstream | str | AssetSpec] | None = ...,
    deps: Iterable[str | AssetSpec] = ...,
    source_version: Callable[..., Any] | None = ...,
    primary_key: str | Iterable[str] = ...,
    personal: str | Iterable[str] = ...,
    checks: Iterable[Check] = ...,
) -> Callable[[Callable[..., Any]], AssetSpec]: ...


def asset(
    fn: Callable[..., Any] | None = None, /, **options: Any
) -> AssetSpec | Callable[[Callable[..., Any]], AssetSpec]:
    """Turn a plain, typed function into an asset.

    The function's name names the asset; its positional parameters name the upstream
    assets it reads (``ins=`` maps others), its keyword-only parameters are typed run
    params, and ``partition`` / ``context`` are filled in by headrace. The decorated
    object stays callable, so the function can be unit-tested without headrace running.

    ``source_version`` is for assets that read data from outside headrace (a landed
    file, an API): a function returning a fingerprint of that data (say, a file's size
    and modification time). It is called before each run with the ``partition`` and the
    params it names; a changed fingerprint invalidates the cached version.

    ``primary_key`` names the column(s) identifying a row of a table asset; diffs
    between versions then report added, removed and changed rows.

    ``personal`` names the columns holding personal data: the team server masks them
    in previews, diffs, failing-row samples and prediction logs for roles without
    ``read_personal`` (maintainer and up).

    ``checks`` (``headrace.checks``) run on every materialization: a failed check of
    severity ``error`` quarantines the new version (kept, never on the branch) and stops
    the asset's downstream; a ``warn`` is recorded and the run goes on.

    Example:
        >>> @asset(group="flights", tags=["daily"])
        ... def late(raw_flights: "pd.DataFrame", *, min_delay: int = 15) -> "pd.DataFrame":
        ...     return raw_flights[raw_flights.dep_delay > min_delay]
    """
    if fn is not None:
        return make_asset(fn, **options)

    def decorate(inner: Callable[..., Any]) -> AssetSpec:
        return make_asset(inner, **options)

    return decorate


def model(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    registered_as: str | None = None,
    signature_from: str | None = None,
    **options: Any,
) -> AssetSpec | Callable[[Callable[..., Any]], AssetSpec]:
    """An asset whose value is a fitted model: each new version is stored in the
    model's flavor and registered as a version of the model ``registered_as`` (default:
    the asset's name), a ``candidate`` linked to the run and to the input versions it
    was trained on. ``signature_from`` names the input whose frame gives the input
    signature (default: the first table input). Takes the options of ``@asset``.

    Example:
        >>> @model(signature_from="features")
        ... def flight_delay(features: "pd.DataFrame", *, c: float = 1.0) -> "LogisticRegression":
        ...     return LogisticRegression(C=c).fit(features[COLUMNS], features.delayed)
    """

    def decorate(inner: Callable[..., Any]) -> AssetSpec:
        name = str(registered_as or options.get("name") or getattr(inner, "__name__", ""))
        return make_asset(
            inner, model=ModelSpec(name=name, signature_from=signature_from), **options
        )

    if fn is not None:
        return decorate(fn)
    return decorate
