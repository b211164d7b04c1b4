"""A throwaway OpenLDAP server (Debian's slapd) on a loopback port, for tests and the bench.

``running_slapd()`` writes a ``slapd.conf`` into a temporary folder (schemas from
/etc/ldap/schema, one mdb database under ``dc=example,dc=org``), loads the base
entries with ``slapadd`` and starts ``slapd -h ldap://127.0.0.1:PORT/ -f ...`` in
the foreground, stopped when the block ends. When slapd is missing and we are
root on Debian, it installs ``slapd`` and ``ldap-utils`` first (noninteractive), so
CI's fresh machine gets it through ``./dev test``. With ``tls`` it generates a CA
and a server certificate for 127.0.0.1 (``openssl``) and also listens on ldaps.

The gateway binds as ``cn=scim-gateway,ou=services,dc=example,dc=org``, a plain
account with write access and no size limit (``limits``), like a real
deployment's service account: the root DN is only for the fixture's own checks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-4a1f"
BIND_DN = f"cn=scim-gateway,ou=services,{SUFFIX}"
BIND_PASSWORD = "gateway-secret-9c2e"
SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis", "msuser")

BASE_LDIF = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=services,{SUFFIX}
objectClass: organizationalUnit
ou: services

dn: {BIND_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: scim-gateway
userPassword: {BIND_PASSWORD}
"""


class SlapdUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Slapd:
    url: str  # ldap://127.0.0.1:PORT
    ldaps_url: str | None
    ca_file: str | None
    folder: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_slapd() -> None:
    """Install Debian's slapd, ldap-utils and openssl when missing (root only; noninteractive)."""
    if SLAPD.exists() and SLAPADD.exists() and shutil.which("openssl"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SlapdUnavailable("slapd is not installed and cannot be: run as root on Debian")
    _apt_install()


def _apt_install() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "slapd", "ldap-utils", "openssl"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)


def make_ca(folder: Path, names: str = "IP:127.0.0.1,DNS:localhost") -> tuple[Path, Path, Path]:
    """A CA, and a certificate for ``names`` (subjectAltName) it signed: (ca, cert, key)."""
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.pem", "s.key", "s.csr", "s.pem")
    )
    ext = folder / "san.cnf"
    ext.write_text(f"subjectAltName={names}\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=scim-gateway test CA", "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return ca, cert, key


def _config(folder: Path, tls: tuple[Path, Path, Path] | None) -> str:
    lines = [f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS]
    lines += [
        f"pidfile {folder}/slapd.pid",
        f"argsfile {folder}/slapd.args",
        "modulepath /usr/lib/ldap",
        "moduleload back_mdb",
    ]
    if tls is not None:
        ca, cert, key = tls
        lines += [f"TLSCACertificateFile {ca}", f"TLSCertificateFile {cert}"]
        lines += [f"TLSCertificateKeyFile {key}"]
    lines += [
        "database mdb",
        "maxsize 1073741824",
        "dbnosync",  # a throwaway database: no fsync per write
        f'suffix "{SUFFIX}"',
        f'rootdn "{ROOT_DN}"',
        f"rootpw {ROOT_PASSWORD}",
        f"directory {folder}/db",
        "index objectClass eq",
        "index entryUUID eq",
        "index uid,cn,mail,sn,givenName,displayName eq,sub",
        "index member,uniqueMember,memberUid eq",
        f'limits dn.exact="{BIND_DN}" size=unlimited time=unlimited',
        f'access to * by dn.exact="{BIND_DN}" write by anonymous auth by * none',
    ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def running_slapd(*, tls: bool = False, tls_names: str | None = None) -> Iterator[Slapd]:
    """slapd until the block ends; with ``tls``, also on ldaps, its certificate for
    ``tls_names`` (default: 127.0.0.1 and localhost)."""
    ensure_slapd()
    with tempfile.TemporaryDirectory(prefix="slapd-") as tmp:
        folder = Path(tmp)
        (folder / "db").mkdir()
        certs = (make_ca(folder, tls_names) if tls_names else make_ca(folder)) if tls else None
        conf = folder / "slapd.conf"
        conf.write_text(_config(folder, certs))
        ldif = folder / "base.ldif"
        ldif.write_text(BASE_LDIF)
        subprocess.run(
            [str(SLAPADD), "-f", str(conf), "-l", str(ldif)], check=True, capture_output=True
        )
        port = _free_port()
        urls = f"ldap://127.0.0.1:{port}/"
        ldaps_url = None
        if tls:
            ldaps_port = _free_port()
            ldaps_url = f"ldaps://127.0.0.1:{ldaps_port}"
            urls += f" ldaps://127.0.0.1:{ldaps_port}/"
        log = folder / "slapd.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(SLAPD), "-h", urls, "-f", str(conf), "-d", "0"],
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        try:
            _wait_listening(port, proc, log)
            yield Slapd(
                f"ldap://127.0.0.1:{port}",
                ldaps_url,
                str(certs[0]) if certs else None,
                folder,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_listening(
    port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = log.read_text(errors="replace")
            raise SlapdUnavailable(f"slapd exited with {proc.returncode}: {err[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SlapdUnavailable("slapd did not start listening")
