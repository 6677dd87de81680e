"""The keyed hashing scheme: stable, domain-separated by type, and a key file that is created once."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import threading
from pathlib import Path

import pytest

from core.errors import BadInput
from core.hashing import KEY_BYTES, SCHEME_VERSION, hash_value, keyed_hash, load_or_create_key

KEY = bytes(range(32))


def test_scheme_v1_is_truncated_hmac_sha256_over_type_and_value() -> None:
    expected = hmac.new(KEY, b"email\x00john@acme.com", hashlib.sha256).hexdigest()[:32]
    assert SCHEME_VERSION == 1
    assert keyed_hash(KEY, "email", "john@acme.com") == expected
    assert keyed_hash(KEY, "email", "john@acme.com", version=1) == expected


def test_hash_shape_and_separation() -> None:
    digest = keyed_hash(KEY, "username", "john")
    assert len(digest) == 32 and digest == digest.lower() and int(digest, 16) >= 0
    assert keyed_hash(KEY, "username", "john") != keyed_hash(KEY, "text", "john")  # type is in the message
    assert keyed_hash(KEY, "username", "john") != keyed_hash(bytes(32), "username", "john")  # keyed
    # the NUL separator keeps (type, value) pairs from colliding by concatenation
    assert keyed_hash(KEY, "name", "x") != keyed_hash(KEY, "nam", "ex")


def test_unknown_version_is_refused() -> None:
    with pytest.raises(BadInput):
        keyed_hash(KEY, "email", "a@b.co", version=2)


def test_hash_value_canonicalises_first() -> None:
    company_side = hash_value(KEY, "phone", "138 0013 8000", region="CN")
    service_side = hash_value(KEY, "phone", "+86-138-0013-8000")
    assert company_side is not None and company_side == service_side
    assert company_side == keyed_hash(KEY, "phone", "+8613800138000")
    assert hash_value(KEY, "email", "John@ACME.com") == hash_value(KEY, "email", "john@acme.com")
    assert hash_value(KEY, "card", "4111 1111 1111 1112") is None


def test_key_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "home" / "hash.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == key.hex()
    assert load_or_create_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["hash.key"]  # no temporary left behind


def test_existing_key_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "hash.key"
    path.write_text(KEY.hex() + "\n")
    assert load_or_create_key(path) == KEY


@pytest.mark.parametrize("content", ["", "zz", "00" * 16, "not a key at all\n"])
def test_corrupt_key_file_is_bad_input(tmp_path: Path, content: str) -> None:
    path = tmp_path / "hash.key"
    path.write_text(content)
    with pytest.raises(BadInput):
        load_or_create_key(path)


def test_racing_creators_agree(tmp_path: Path) -> None:
    path = tmp_path / "hash.key"
    barrier = threading.Barrier(8)
    keys: list[bytes] = []

    def create() -> None:
        barrier.wait()
        keys.append(load_or_create_key(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert load_or_create_key(path) == keys[0]
