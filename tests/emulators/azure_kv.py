"""Azure Key Vault emulator for rsops' tests, over HTTPS (certificate from a
CA written to ca.pem).

The vault is served as https://rsops-test.vault.azure.net, a subdomain of the
challenge's resource https://vault.azure.net as every real vault is, so the
SDK's challenge check runs as in production: the client reaches it through
the tunnelling proxy in info.json's `https_proxy` (HTTPS_PROXY), which routes
that host (and the emulator's own 127.0.0.1 address) here. `direct_url`, the
emulator's 127.0.0.1 address, is not under the resource: a vault there must
be refused before it gets a token.

  POST /keys/{name}/{version}/encrypt|decrypt?api-version=…   Key Vault keys
      API with RSA-OAEP-256. A request without a token gets the 401 bearer
      challenge the SDK expects first; then the token must be one this
      emulator issued for https://vault.azure.net and not expired.
  GET  /keys/{name}[/{version}]?api-version=…   Get Key: the public JWK
      (kid with the version) and attributes, under the same token checks;
      without a version, the latest one (each key here has one version).
  POST /{tenant}/oauth2/v2.0/token    Entra ID (AZURE_AUTHORITY_HOST):
      client-credentials grant with a client secret, or with a federated
      client assertion (workload identity), checked for signature, audience
      api://AzureADTokenExchange and expiry.
  GET  /msi/token                     App Service managed identity
      (IDENTITY_ENDPOINT / IDENTITY_HEADER). The header value `expired`
      yields a token the vault will reject as expired.

Keys: `sops` works, `denied` answers 403, `disabled` 403 KeyDisabled; `slow`
works too, but its decrypt answers only after 60 s (or the seconds in
STATE_DIR/delay-slow, read at each request); any other name or version is 404.
Every key operation is logged to requests.log as `KEYOP host=… key=… op=…
bearer=yes|no`, every proxy tunnel to proxy.log.

Usage: azure_kv.py STATE_DIR                            serve; writes info.json
       azure_kv.py STATE_DIR encrypt KEY PLAINTEXT_B64  prints `enc` (base64url)
"""

import base64
import json
import os
import ssl
import sys
import time
import urllib.parse
import urllib.request

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

import common

VAULT_RESOURCE = "https://vault.azure.net"
VAULT_HOST = "rsops-test.vault.azure.net"
VAULT_URL = f"https://{VAULT_HOST}"
TENANT = "00000000-0000-0000-0000-00000000abcd"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
KEY_NAMES = ["sops", "denied", "disabled", "slow"]
SLOW_SECONDS = 60
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def kv_error(code, message, inner=None):
    error = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return {"error": error}


def aad_error(code, description):
    number = description[len("AADSTS"):].split(":", 1)[0]
    return {"error": code, "error_description": description, "error_codes": [int(number)]}


class State:
    def __init__(self, state_dir):
        self.dir = state_dir
        self.tokens = common.Hs256()
        self.client_secret = "secret-" + base64.b32encode(os.urandom(10)).decode()
        self.identity_header = "identity-" + base64.b32encode(os.urandom(10)).decode()
        self.issuer_key = common.rsa_key()
        self.keys = {n: (os.urandom(16).hex(), common.rsa_key()) for n in KEY_NAMES}

    def access_token(self, aud, lifetime=3600):
        t = common.now()
        return self.tokens.mint({"iss": f"https://sts.windows.net/{TENANT}/", "aud": aud,
                                 "tid": TENANT, "iat": t, "exp": t + lifetime})

    def check_bearer(self, token):
        claims = self.tokens.verify(token)
        if claims is None:
            return "the token is not valid"
        if claims.get("aud") != VAULT_RESOURCE:
            return f"AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: {claims.get('aud')}."
        if claims.get("exp", 0) < common.now():
            return "AKV10032: Invalid issuer or the token is expired."
        return None

    def federated_token(self, name, aud, lifetime):
        t = common.now()
        path = os.path.join(self.dir, f"federated-{name}.jwt")
        with open(path, "w") as f:
            f.write(common.rs256_mint(self.issuer_key, {
                "iss": "https://oidc.example/cluster", "sub": "system:serviceaccount:ci:rsops",
                "aud": aud, "iat": t - 10, "exp": t + lifetime}))
        return path

    def info(self, port, proxy_port):
        base = f"https://127.0.0.1:{port}"
        return {
            "vault_url": VAULT_URL,
            "vault_host": VAULT_HOST,
            "direct_url": base,
            "https_proxy": f"http://127.0.0.1:{proxy_port}",
            "proxy_log": os.path.join(self.dir, "proxy.log"),
            "requests_log": os.path.join(self.dir, "requests.log"),
            "authority_host": base,
            "identity_endpoint": f"{base}/msi/token",
            "identity_header": self.identity_header,
            "ca": os.path.join(self.dir, "ca.pem"),
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "client_secret": self.client_secret,
            "versions": {n: v for n, (v, _) in self.keys.items()},
            "federated_tokens": {
                "valid": self.federated_token("valid", EXCHANGE_AUDIENCE, 3600),
                "expired": self.federated_token("expired", EXCHANGE_AUDIENCE, -600),
                "wrong_audience": self.federated_token("wrong-aud", "api://SomethingElse", 3600),
            },
        }


def make_handler(state: State):
    class Vault(common.Handler):
        log_path = os.path.join(state.dir, "requests.log")

        def challenge(self, message):
            host = f"https://127.0.0.1:{self.server.server_address[1]}"
            self.reply(401, kv_error("Unauthorized", message), {
                "WWW-Authenticate": f'Bearer authorization="{host}/{TENANT}", resource="{VAULT_RESOURCE}"',
            })

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            parts = url.path.strip("/").split("/")
            if parts[0] == "keys" and len(parts) in (2, 3):
                return self.get_key(parts[1], parts[2] if len(parts) == 3 else "", url.query)
            if url.path != "/msi/token":
                return self.reply(404, kv_error("NotFound", "no such endpoint"))
            query = dict(urllib.parse.parse_qsl(url.query))
            header = self.headers.get("X-IDENTITY-HEADER")
            if header not in (state.identity_header, "expired"):
                return self.reply(401, {"statusCode": 401, "message": "Invalid X-IDENTITY-HEADER"})
            if query.get("resource") != VAULT_RESOURCE or not query.get("api-version"):
                return self.reply(400, {"statusCode": 400, "message": "unexpected resource or api-version"})
            lifetime = -600 if header == "expired" else 3600
            self.reply(200, {
                "access_token": state.access_token(VAULT_RESOURCE, lifetime),
                # The endpoint vouches for an hour even for the expired token:
                # the vault, not the client, must catch it.
                "expires_on": str(common.now() + 3600),
                "resource": VAULT_RESOURCE,
                "token_type": "Bearer",
                "client_id": CLIENT_ID,
            })

        def do_POST(self):
            url = urllib.parse.urlparse(self.path)
            parts = url.path.strip("/").split("/")
            if parts[1:] == ["oauth2", "v2.0", "token"]:
                return self.token(parts[0])
            if len(parts) == 4 and parts[0] == "keys" and parts[3] in ("encrypt", "decrypt"):
                return self.key_operation(parts[1], parts[2], parts[3], url.query)
            self.reply(404, kv_error("NotFound", f"no such endpoint {url.path}"))

        def get_key(self, name, version, query):
            token = self.bearer()
            with open(self.log_path, "a") as f:
                f.write(f"KEYOP host={self.headers.get('Host')} key={name} op=get "
                        f"bearer={'yes' if token else 'no'}\n")
            if token is None:
                return self.challenge("AKV10000: Request is missing a Bearer or PoP token.")
            problem = state.check_bearer(token)
            if problem:
                return self.challenge(problem)
            if not dict(urllib.parse.parse_qsl(query)).get("api-version"):
                return self.reply(400, kv_error("BadParameter", "api-version is missing"))
            entry = state.keys.get(name)
            if entry is None or version not in ("", entry[0]):
                return self.reply(404, kv_error(
                    "KeyNotFound", f"A key with (name/id) {name}/{version} was not found in this key vault."))
            if name == "denied":
                return self.reply(403, kv_error(
                    "Forbidden", "The user, group or application does not have keys get permission on key vault.",
                    "ForbiddenByPolicy"))
            numbers = entry[1].public_key().public_numbers()
            def b64_int(n):
                return common.b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))
            created = common.now()
            self.reply(200, {
                "key": {
                    "kid": f"{VAULT_URL}/keys/{name}/{entry[0]}",
                    "kty": "RSA",
                    "key_ops": ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
                    "n": b64_int(numbers.n),
                    "e": b64_int(numbers.e),
                },
                "attributes": {
                    # Get Key still answers for a disabled key; only its
                    # operations are refused.
                    "enabled": name != "disabled",
                    "created": created,
                    "updated": created,
                    "recoveryLevel": "Recoverable+Purgeable",
                    "recoverableDays": 90,
                },
            })

        def key_operation(self, name, version, operation, query):
            body = self.body()
            token = self.bearer()
            with open(self.log_path, "a") as f:
                f.write(f"KEYOP host={self.headers.get('Host')} key={name} op={operation} "
                        f"bearer={'yes' if token else 'no'}\n")
            if token is None:
                return self.challenge("AKV10000: Request is missing a Bearer or PoP token.")
            problem = state.check_bearer(token)
            if problem:
                return self.challenge(problem)
            if not dict(urllib.parse.parse_qsl(query)).get("api-version"):
                return self.reply(400, kv_error("BadParameter", "api-version is missing"))
            try:
                request = json.loads(body)
            except json.JSONDecodeError:
                return self.reply(400, kv_error("BadParameter", "the body is not JSON"))
            if request.get("alg") != "RSA-OAEP-256":
                return self.reply(400, kv_error("BadParameter", f"unexpected algorithm {request.get('alg')!r}"))
            entry = state.keys.get(name)
            if entry is None or version not in ("", entry[0]):
                return self.reply(404, kv_error(
                    "KeyNotFound", f"A key with (name/id) {name}/{version} was not found in this key vault."))
            if name == "denied":
                return self.reply(403, kv_error(
                    "Forbidden", f"The user, group or application does not have keys {operation} permission on key vault.",
                    "ForbiddenByPolicy"))
            if name == "disabled":
                return self.reply(403, kv_error(
                    "Forbidden", f"Operation {operation} is not allowed on a disabled key.", "KeyDisabled"))
            if operation == "decrypt":
                delay = common.decrypt_delay(state.dir, name, SLOW_SECONDS if name == "slow" else 0)
                if delay:
                    time.sleep(delay)
            key_id = f"{VAULT_URL}/keys/{name}/{entry[0]}"
            try:
                value = common.b64url_decode(request.get("value", ""))
                if operation == "encrypt":
                    result = entry[1].public_key().encrypt(value, OAEP)
                else:
                    result = entry[1].decrypt(value, OAEP)
            except Exception:
                return self.reply(400, kv_error("BadParameter", "Bad Request"))
            self.reply(200, {"kid": key_id, "value": common.b64url(result)})

        def token(self, tenant):
            form = dict(urllib.parse.parse_qsl(self.body().decode()))
            if tenant != TENANT:
                return self.reply(400, aad_error("invalid_request", f"AADSTS900023: Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."))
            if form.get("grant_type") != "client_credentials" or form.get("client_id") != CLIENT_ID:
                return self.reply(400, aad_error("unauthorized_client", "AADSTS700016: Application not found in the directory."))
            if form.get("scope") != f"{VAULT_RESOURCE}/.default":
                return self.reply(400, aad_error("invalid_scope", f"AADSTS70011: The provided value for scope {form.get('scope')} is not valid."))
            if "client_secret" in form:
                if form["client_secret"] != state.client_secret:
                    return self.reply(401, aad_error("invalid_client", "AADSTS7000215: Invalid client secret provided."))
            elif form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                parsed = common.rs256_parse(form.get("client_assertion", ""))
                if parsed is None or not common.rs256_valid(state.issuer_key.public_key(), parsed[2], parsed[3]):
                    return self.reply(401, aad_error("invalid_client", "AADSTS700027: Client assertion contains an invalid signature."))
                claims = parsed[1]
                if claims.get("aud") != EXCHANGE_AUDIENCE:
                    return self.reply(401, aad_error("invalid_client", f"AADSTS700212: No matching federated identity record found for presented assertion audience '{claims.get('aud')}'."))
                if common.time_problem(claims):
                    return self.reply(401, aad_error("invalid_client", "AADSTS700024: Client assertion is not within its valid time range."))
            else:
                return self.reply(401, aad_error("invalid_client", "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required."))
            self.reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                             "access_token": state.access_token(VAULT_RESOURCE)})

    return Vault


def client_encrypt(state_dir, key, plaintext_b64):
    """Wraps a data key through the running emulator's real encrypt call,
    printing it as the reference stores it (base64url, no padding)."""
    with open(os.path.join(state_dir, "info.json")) as f:
        info = json.load(f)
    context = ssl.create_default_context(cafile=info["ca"])
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": info["client_id"],
        "client_secret": info["client_secret"], "scope": f"{VAULT_RESOURCE}/.default"}).encode()
    with urllib.request.urlopen(f"{info['authority_host']}/{info['tenant_id']}/oauth2/v2.0/token", form, context=context) as r:
        token = json.load(r)["access_token"]
    version = info["versions"][key]
    value = common.b64url(base64.b64decode(plaintext_b64))
    request = urllib.request.Request(
        f"{info['direct_url']}/keys/{key}/{version}/encrypt?api-version=2025-07-01",
        data=json.dumps({"alg": "RSA-OAEP-256", "value": value}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST")
    with urllib.request.urlopen(request, context=context) as r:
        print(json.load(r)["value"])


def main():
    state_dir = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "encrypt":
        return client_encrypt(state_dir, sys.argv[3], sys.argv[4])
    state = State(state_dir)
    server = common.serve(make_handler(state), common.make_tls(state_dir, [VAULT_HOST]))
    port = server.server_address[1]
    emulator = ("127.0.0.1", port)
    proxy = common.serve_connect_proxy(
        {f"{VAULT_HOST}:443": emulator, f"127.0.0.1:{port}": emulator},
        os.path.join(state_dir, "proxy.log"),
    )
    common.write_info(state_dir, state.info(port, proxy.server_address[1]))
    common.run_until_stdin_closes()


if __name__ == "__main__":
    main()
