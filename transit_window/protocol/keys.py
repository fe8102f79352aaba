"""Ed25519 node keys: generation, PEM files kept private (mode 0600), JWKs and RFC 7638 key ids."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc.jwk import OKPKey


class KeyFileError(Exception):
    """A key file is missing, unreadable, of the wrong kind, or readable by others."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A node's private key, ready to sign, with its public JWK and RFC 7638 `kid`."""

    jose_key: OKPKey
    kid: str
    public_jwk: dict[str, Any]
    sodium: nacl.signing.SigningKey  # libsodium signs and verifies Ed25519 faster than OpenSSL (see jws.py)


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    jose_key: OKPKey
    kid: str
    sodium: nacl.signing.VerifyKey


def generate_private_pem() -> bytes:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def write_private_key(path: Path, *, overwrite: bool = False) -> SigningKey:
    """Create a new key file readable by its owner only. Refuses to replace an existing key unless told to."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a node key (use --force to replace it)")
    pem = generate_private_pem()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
    finally:
        os.close(fd)
    return signing_key_from_pem(pem)


def load_private_key(path: Path) -> SigningKey:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} not found; create one with `transit-window keys generate`") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); run chmod 600 {path}"
        )
    return signing_key_from_pem(path.read_bytes())


def signing_key_from_pem(pem: bytes) -> SigningKey:
    try:
        key = OKPKey.import_key(pem)
    except Exception as exc:
        raise KeyFileError("not an Ed25519 private key in PEM form") from exc
    if key.curve_name != "Ed25519" or not key.is_private:
        raise KeyFileError("the key must be an Ed25519 private key")
    public = public_jwk_of(key)
    private = key.private_key
    assert isinstance(private, Ed25519PrivateKey)
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return SigningKey(jose_key=key, kid=thumbprint(public), public_jwk=public, sodium=nacl.signing.SigningKey(seed))


def public_jwk_of(key: OKPKey) -> dict[str, Any]:
    data = key.as_dict(private=False)
    return {"kty": "OKP", "crv": "Ed25519", "x": data["x"]}


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an Ed25519 JWK: the corridor's `kid`."""
    return OKPKey.import_key(public_jwk).thumbprint()


def verifying_key(public_jwk: dict[str, Any]) -> VerifyingKey:
    key = OKPKey.import_key(public_jwk)
    public = key.public_key
    if not isinstance(public, Ed25519PublicKey):
        raise KeyFileError("the corridor uses Ed25519 keys only")
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return VerifyingKey(jose_key=key, kid=key.thumbprint(), sodium=nacl.signing.VerifyKey(raw))
