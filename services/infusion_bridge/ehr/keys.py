"""The service's own signing key for SMART Backend Services: load it, derive its public JWK
(``kid`` = RFC 7638 thumbprint), and generate a new pair. RSA keys sign RS384, P-384 keys ES384.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A private key with its algorithm and public JWK (which carries ``kid``, ``alg``, ``use``)."""

    private_key: PrivateKey
    algorithm: str
    public_jwk: dict[str, Any]

    @property
    def kid(self) -> str:
        return str(self.public_jwk["kid"])


def load_signing_key(pem: bytes) -> SigningKey:
    """Parse a PEM private key (PKCS#8 or traditional, unencrypted): RSA ≥ 2048 bits or EC P-384."""
    key = serialization.load_pem_private_key(pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise ValueError(f"the RSA key has {key.key_size} bits; at least 2048 are needed")
        return SigningKey(key, "RS384", public_jwk(key))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP384R1):
            raise ValueError(f"the EC key is on {key.curve.name}; ES384 needs P-384 (secp384r1)")
        return SigningKey(key, "ES384", public_jwk(key))
    raise ValueError("the private key must be RSA or EC P-384")


def public_jwk(key: PrivateKey) -> dict[str, Any]:
    """The public half as a JWK with ``kid`` = its RFC 7638 thumbprint."""
    jwk: dict[str, Any]
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        jwk = {"kty": "RSA", "e": _b64_int(numbers.e), "n": _b64_int(numbers.n)}
        alg = "RS384"
    else:
        point = key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-384", "x": _b64_int(point.x, 48), "y": _b64_int(point.y, 48)}
        alg = "ES384"
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    kid = _b64(hashlib.sha256(canonical).digest())
    return {**jwk, "kid": kid, "alg": alg, "use": "sig", "key_ops": ["verify"]}


def generate_key_pair(private_path: Path, *, kind: str = "rsa") -> SigningKey:
    """Write a new private key (PKCS#8 PEM, mode 0600, refusing to overwrite) and beside it the
    public key set ``<name>.jwks.json``; returns the key."""
    key: PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=3072)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP384R1())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    signing = load_signing_key(pem)
    jwks_path = private_path.with_name(private_path.stem + ".jwks.json")
    jwks_path.write_text(json.dumps({"keys": [signing.public_jwk]}, indent=2) + "\n")
    return signing


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64_int(value: int, length: int | None = None) -> str:
    size = length or max(1, (value.bit_length() + 7) // 8)
    return _b64(value.to_bytes(size, "big"))
