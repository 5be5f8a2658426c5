"""TLS for the embedded server: the swarm's own CA and the server's certificate, kept under
`<data_dir>/keys/tls/` (private keys in 0600 files). Clients verify it with
`reverie.runtime.bus.credentials.client_context`."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..bus.credentials import tls_dir
from ..config import SwarmConfig
from ..keyfiles import KeyFileMissing, create_private, fsync_dir, read_private

__all__ = ["TlsFiles", "ensure_server_cert"]

CA_YEARS = 10
SERVER_DAYS = 365
RENEW_DAYS = 30
"""A server certificate with fewer days left than this is replaced on the next `reverie up`."""


@dataclass(frozen=True)
class TlsFiles:
    """What nats-server's `tls {}` block and the clients need."""

    ca: Path
    cert: Path
    key: Path


def _names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(["localhost", "127.0.0.1", "::1", *hosts]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _ca(folder: Path, now: datetime.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The swarm CA: its key is the raw 32-byte P-256 scalar in `ca.key` (0600)."""
    key_path, cert_path = folder / "ca.key", folder / "ca.pem"
    try:
        key = ec.derive_private_key(int.from_bytes(read_private(key_path, 32), "big"), ec.SECP256R1())
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    except KeyFileMissing:
        pass
    key = ec.generate_private_key(ec.SECP256R1())
    create_private(key_path, key.private_numbers().private_value.to_bytes(32, "big"))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reverie swarm CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=True, crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _current(cert_path: Path, names: list[x509.GeneralName], now: datetime.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    fresh = cert.not_valid_after_utc - now > datetime.timedelta(days=RENEW_DAYS)
    return fresh and all(n in have for n in names)


def ensure_server_cert(config: SwarmConfig, hosts: list[str], *, name: str = "server") -> TlsFiles:
    """The CA (created once) and a server certificate `<name>.pem` for `hosts` (plus localhost
    and the loopback addresses), created or renewed when missing, expiring or not covering them."""
    folder = tls_dir(config)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = TlsFiles(ca=folder / "ca.pem", cert=folder / f"{name}.pem", key=folder / f"{name}.key")
    now = datetime.datetime.now(datetime.UTC)
    names = _names(hosts)
    ca_key, ca_cert = _ca(folder, now)
    if _current(files.cert, names, now) and files.key.exists():
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reverie nats-server")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,  # and a client's, for cluster routes
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files.key.unlink(missing_ok=True)
    create_private(files.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fsync_dir(folder)
    return files

