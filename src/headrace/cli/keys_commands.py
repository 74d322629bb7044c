"""``headrace keys``: client-side encryption of the object store (its data key and the
user's key that wraps it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

keys_app = typer.Typer(
    help="Encrypt the object store: generate a key, turn encryption on, rotate the key.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


def _console() -> Any:
    from headrace.cli.app import console

    return console


def _config() -> Any:
    from headrace.runtime.workspace import open_workspace

    return open_workspace().objects_config


@keys_app.command("generate")
def generate() -> None:
    """Print a new random key (256 bits) for HEADRACE_ENCRYPTION_KEY or a key file."""
    from headrace.objects.keyring import generate_user_key

    typer.echo(generate_user_key())


@keys_app.command("init")
def init() -> None:
    """Encrypt this workspace's (empty) object store with HEADRACE_ENCRYPTION_KEY or
    [objects] key_file."""
    from headrace.objects.opening import enable_encryption

    record = enable_encryption(_config())
    _console().print(
        f"encrypted the object store: data key wrapped under key id {record.key_id} "
        "(keep your key safe: without it no blob can be read)"
    )


@keys_app.command("rotate")
def rotate(
    new_key_file: Annotated[
        Path | None,
        typer.Option(help="A file holding the new key (else HEADRACE_NEW_ENCRYPTION_KEY)."),
    ] = None,
) -> None:
    """Rewrap the data key under a new key; blobs are not re-encrypted."""
    from headrace.objects.opening import rotate_key

    record = rotate_key(_config(), new_key_file=None if new_key_file is None else str(new_key_file))
    _console().print(
        f"rotated: the data key is now wrapped under key id {record.key_id}; use the new "
        "key from now on (the old one no longer opens the store)"
    )


@keys_app.command("status")
def status() -> None:
    """Whether the object store is encrypted, and under which key id (no key needed)."""
    from headrace.objects.opening import key_status

    config = _config()
    record = key_status(config)
    if record is None:
        _console().print(f"{escape(config.url)}: not encrypted")
        return
    rotated = f", rotated {record.rotated}" if record.rotated else ""
    _console().print(
        f"{escape(config.url)}: encrypted (AES-256-GCM, keyed BLAKE3 addresses), key id "
        f"{record.key_id}, created {record.created}{rotated}"
    )
