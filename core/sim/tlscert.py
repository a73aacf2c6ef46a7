"""Certificates for simulated TLS devices: a private CA and leaf certificates with chosen lifetimes.

The demo's TLS panel and the TLS check tests need certificates that expire in a few days, have
expired, or are self-signed; they are made at start with the `cryptography` package (EC P-256 keys:
quick to generate), never read from or written to anywhere but where the caller asks.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Pem:
    """A certificate and its private key, PEM-encoded."""

    cert: bytes
    key: bytes

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write `<stem>.crt` and `<stem>.key` (0600) into directory; returns both paths."""
        crt, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        crt.write_bytes(self.cert)
        key.touch(mode=0o600)
        key.write_bytes(self.key)
        return crt, key


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Faultwatch test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem(cert: Any, key: Any) -> Pem:
    from cryptography.hazmat.primitives import serialization

    return Pem(cert.public_bytes(serialization.Encoding.PEM),
               key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()))


class CertAuthority:
    """A private CA that issues leaf certificates valid for a given time from now."""

    def __init__(self, name: str = "Faultwatch test CA", now: dt.datetime | None = None) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        self.now = now or dt.datetime.now(dt.timezone.utc)
        self._key = _key()
        self._name = _name(name)
        self._cert = (x509.CertificateBuilder().subject_name(self._name).issuer_name(self._name)
                      .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                      .not_valid_before(self.now - dt.timedelta(days=1))
                      .not_valid_after(self.now + dt.timedelta(days=3650))
                      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                      # Extensions Python 3.13's strict verification (VERIFY_X509_STRICT) insists on.
                      .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                   key_encipherment=False, data_encipherment=False,
                                                   key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                   encipher_only=False, decipher_only=False), critical=True)
                      .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                                     critical=False)
                      .sign(self._key, hashes.SHA256()))
        self.pem = _pem(self._cert, self._key).cert

    def issue(self, common_name: str, valid_for: dt.timedelta, hosts: tuple[str, ...] = ("127.0.0.1",),
              self_signed: bool = False) -> Pem:
        """A server certificate for `hosts` (names or IP addresses) that ends `valid_for` from now.

        A negative `valid_for` gives a certificate that has already expired; `self_signed` signs it with
        its own key instead of the CA's.
        """
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        key = _key()
        not_after = self.now + valid_for
        not_before = min(self.now - dt.timedelta(days=1), not_after - dt.timedelta(days=30))
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        subject = _name(common_name)
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(subject if self_signed else self._name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
        signer_public = key.public_key() if self_signed else self._key.public_key()
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_public),
                                        critical=False)
        cert = builder.sign(key if self_signed else self._key, hashes.SHA256())
        return _pem(cert, key)


def server_context(pem: Pem, directory: Path, stem: str) -> Any:
    """An ssl.SSLContext that serves `pem` (written under directory: ssl loads chains from files)."""
    import ssl

    crt, key = pem.write(directory, stem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx
