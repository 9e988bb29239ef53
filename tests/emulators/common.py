"""Shared plumbing of the cloud KMS test emulators: a throw-away CA and TLS
certificate, compact JWTs (HS256 for the emulators' own tokens, RS256 for
tokens signed by keys the test holds), and a threaded HTTP(S) server that
reports its ports in an info file once it is ready.

The emulators are test fixtures: they speak the real wire protocol with
real cryptography so the official SDK clients in rsops can be tested as
users run them; only endpoints and trust roots differ.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import secrets
import select
import socket
import socketserver
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
import ipaddress


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def now() -> int:
    return int(time.time())


class Hs256:
    """The emulator's own access tokens: JWTs it can verify itself."""

    def __init__(self):
        self.secret = secrets.token_bytes(32)

    def mint(self, claims: dict) -> str:
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64url(json.dumps(claims).encode())
        sig = hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64url(sig)}"

    def verify(self, token: str):
        """The claims, or None when the token is not one of ours."""
        try:
            head, body, sig = token.split(".")
            want = hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(want, b64url_decode(sig)):
                return None
            return json.loads(b64url_decode(body))
        except (ValueError, json.JSONDecodeError):
            return None


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_private(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def rs256_mint(key, claims: dict, kid=None) -> str:
    header = {"alg": "RS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(sig)}"


def rs256_parse(token: str):
    """(header, claims, signing input, signature) or None if malformed."""
    try:
        head, body, sig = token.split(".")
        return (
            json.loads(b64url_decode(head)),
            json.loads(b64url_decode(body)),
            f"{head}.{body}".encode(),
            b64url_decode(sig),
        )
    except (ValueError, json.JSONDecodeError):
        return None


def rs256_valid(public_key, signing_input: bytes, signature: bytes) -> bool:
    try:
        public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        return True
    except Exception:
        return False


def time_problem(claims: dict, skew: int = 60):
    """Why the token is outside its validity window, or None."""
    t = now()
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp < t:
        return "the token has expired"
    iat = claims.get("iat", claims.get("nbf", t))
    if isinstance(iat, (int, float)) and iat > t + skew:
        return "the token is not valid yet"
    return None


def decrypt_delay(state_dir: str, key: str, default: float) -> float:
    """Seconds the `key`'s decrypt waits before answering: STATE_DIR/delay-KEY
    if the test wrote one (read at every request), else `default`."""
    try:
        with open(os.path.join(state_dir, f"delay-{key}")) as f:
            return float(f.read().strip())
    except FileNotFoundError:
        return default


def make_tls(state_dir: str, dns_names=()) -> ssl.SSLContext:
    """A CA (written to ca.pem for the client's SSL_CERT_FILE) and a server
    certificate it signed for 127.0.0.1, localhost and `dns_names`."""
    ca_key = rsa_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsops test CA")])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    end = start + datetime.timedelta(days=30)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa_key()
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                + [x509.DNSName(name) for name in dns_names]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = os.path.join(state_dir, "ca.pem")
    with open(ca_path, "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path = os.path.join(state_dir, "server.pem")
    with open(cert_path, "wb") as f:
        f.write(leaf_cert.public_bytes(serialization.Encoding.PEM))
        f.write(leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path)
    return context


class Handler(BaseHTTPRequestHandler):
    """Base handler: JSON helpers, quiet logging to the state dir."""

    protocol_version = "HTTP/1.1"
    log_path = None

    def log_message(self, fmt, *args):
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write("%s %s\n" % (self.address_string(), fmt % args))

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def json_body(self):
        try:
            return json.loads(self.body() or b"{}")
        except json.JSONDecodeError:
            return None

    def reply(self, status: int, payload, headers=None, content_type="application/json"):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def bearer(self):
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return None


def serve(handler, tls_context=None) -> ThreadingHTTPServer:
    """Starts a server on a free loopback port in a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_info(state_dir: str, info: dict):
    """Publishes the info file atomically: its presence means ready."""
    tmp = os.path.join(state_dir, "info.json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=2)
    os.replace(tmp, os.path.join(state_dir, "info.json"))


def run_until_stdin_closes():
    """Serves until the test closes our stdin (or kills us): a test that
    panics still drops the pipe, so no emulator outlives its test."""
    try:
        sys.stdin.read()
    finally:
        os._exit(0)


class _ConnectProxy(socketserver.BaseRequestHandler):
    """An HTTP proxy that only tunnels (CONNECT), and only to the targets in
    `routes` (`host:port` -> loopback address); anything else gets 403."""

    routes = {}
    log_path = None

    def log(self, text):
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(text + "\n")

    def handle(self):
        client = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > 65536:
                return
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        target = parts[1] if len(parts) == 3 and parts[0] == "CONNECT" else None
        upstream_address = self.routes.get(target)
        self.log(f"{' '.join(parts[:2])} {'tunnelled' if upstream_address else 'refused'}")
        if upstream_address is None:
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        upstream = socket.create_connection(upstream_address)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        peers = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [])
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            upstream.close()


def serve_connect_proxy(routes: dict, log_path: str) -> socketserver.ThreadingTCPServer:
    """Starts a tunnelling proxy (HTTPS_PROXY for the client) on a free
    loopback port: the client resolves no name itself, so a production-like
    host name such as `<vault>.vault.azure.net` reaches a loopback emulator."""
    handler = type("Proxy", (_ConnectProxy,), {"routes": dict(routes), "log_path": log_path})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
