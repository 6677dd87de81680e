"""``evidence verify`` and ``evidence key``: checking an alert's evidence package (``alerts evidence``);
``evidence store``: whether the configured evidence store (a directory or a bucket) answers."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.errors import BadInput
from leaksentinel.cli.context import state
from leaksentinel.cli.output import emit_object

JSON = Annotated[bool, typer.Option("--json", help="Machine output (JSON).")]

#: A pinned public-key file is tiny; anything bigger is not one (read no further).
_MAX_KEY_FILE = 4096


def write_private(target: str, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically, readable by the owner only (evidence names a company's leak)."""
    path = Path(target)
    if path.is_dir():
        raise BadInput(f"{target}: is a directory (give a file name)")
    if not path.parent.is_dir():
        raise BadInput(f"{target}: directory {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BadInput(f"{target}: cannot write ({exc.strerror or exc})") from None
    return path


def _read_input(target: str, limit: int, what: str) -> bytes:
    path = Path(target)
    if target != "-" and not path.exists():
        raise BadInput(f"{target}: no such {what}")
    if path.is_dir():
        raise BadInput(f"{target}: is a directory, not an evidence {what}")
    try:
        if target == "-":  # `alerts evidence ID -o - | evidence verify -`
            stream = getattr(sys.stdin, "buffer", None)
            data = stream.read(limit + 1) if stream is not None else sys.stdin.read(limit + 1).encode()
        else:
            with path.open("rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise BadInput(f"{target}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise BadInput(f"{target}: larger than {limit} bytes: not an evidence {what}")
    return data


def register(app: typer.Typer) -> None:
    evidence = typer.Typer(
        help="Evidence packages of alerts (made by `alerts evidence`).", no_args_is_help=True
    )
    app.add_typer(evidence, name="evidence")

    @evidence.command("verify")
    def _verify(
        file: Annotated[str, typer.Argument(help="The evidence zip (- for standard input).")],
        key: Annotated[
            str | None,
            typer.Option(
                "--key",
                help="File with the deployment's public key (`leaksentinel evidence key`): proves origin. "
                "Without it the zip proves integrity only: it is as signed by the key it carries.",
            ),
        ] = None,
        as_json: JSON = False,
    ) -> None:
        """Check every file's SHA-256 and the manifest's Ed25519 signature: exit 0 if all hold, 1 naming what
        failed, 2 for a file that is not a zip. Without --key this proves integrity, not origin."""
        from leaksentinel.evidence import MAX_ZIP_BYTES, verify_evidence

        pinned = _read_input(key, _MAX_KEY_FILE, "public key") if key is not None else None
        result = verify_evidence(_read_input(file, MAX_ZIP_BYTES, "package"), pinned)
        if not as_json:
            for problem in result.problems:
                sys.stderr.write(f"FAILED: {problem}\n")
        origin = "signed by the pinned key" if result.pinned else "integrity only (pin the key with --key)"
        human = (
            f"OK: {result.files} files and the signature hold (alert {result.alert}; {origin})"
            if result.ok
            else f"evidence verification FAILED: {len(result.problems)} problem(s)"
        )
        emit_object(result.as_dict(), as_json, human=human)
        if not result.ok:
            raise typer.Exit(1)

    @evidence.command("key")
    def _key(
        output: Annotated[
            str | None, typer.Option("-o", "--output", help="Also write the public key to this file.")
        ] = None,
        as_json: JSON = False,
    ) -> None:
        """Print the deployment's evidence public key (created on first use): give it to `verify --key`."""
        from core.evidence_key import evidence_key_path, load_or_create_signing_key, public_key_hex

        public = public_key_hex(load_or_create_signing_key(state.settings))
        if output:
            write_private(output, (public + "\n").encode("ascii"))
        emit_object(
            {
                "public_key": public,
                "algorithm": "Ed25519",
                "key_file": str(evidence_key_path(state.settings)),
            },
            as_json,
            human=public,
        )

    @evidence.command("store")
    def _store(as_json: JSON = False) -> None:
        """Check the evidence store (evidence_path or evidence_url): exit 0 when it can be reached and written
        (directory) or reached (bucket), 1 naming the problem. Never prints credentials."""
        from core.evidence_store import EvidenceStoreError, FileEvidenceStore, open_evidence_store

        store = open_evidence_store(state.settings)
        problem = None
        try:
            store.check()
        except EvidenceStoreError as exc:
            problem = str(exc)
        kind = "directory" if isinstance(store, FileEvidenceStore) else "s3"
        emit_object(
            {"store": store.describe(), "kind": kind, "ok": problem is None, "problem": problem},
            as_json,
            human=f"evidence store {store.describe()}: "
            + ("OK" if problem is None else f"FAILED: {problem}"),
        )
        if problem is not None:
            raise typer.Exit(1)
