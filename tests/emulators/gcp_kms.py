"""GCP Cloud KMS emulator for rsops' tests.

Serves over HTTPS (certificate from a CA written to ca.pem):
  POST /v1/{crypto key name}:encrypt | :decrypt   the KMS REST API (AES-256-GCM)
  POST /token                                     OAuth 2.0 token endpoint: the
      service-account JWT bearer grant, the refresh-token grant (gcloud ADC
      files) and the STS token exchange (workload identity federation)
and over plain HTTP the GCE metadata server (GCE_METADATA_HOST).

Every KMS call needs a bearer token: one this emulator issued (HS256, with
`aud` = the KMS audience and an `exp`), or a service account's self-signed
JWT (RS256, verified against the account's public key, with the
cloud-platform scope or the KMS audience). Keys: `sops` works, `denied`
answers 403, `disabled` 400 FAILED_PRECONDITION; `slow` works too, but its
decrypt answers only after 60 s (or the seconds in STATE_DIR/delay-slow, read
at each request); any other name is 404.

Usage: gcp_kms.py STATE_DIR           serve; writes STATE_DIR/info.json
       gcp_kms.py STATE_DIR encrypt KEY PLAINTEXT_B64   prints the ciphertext (base64)
"""

import base64
import json
import os
import sys
import time
import urllib.parse
import urllib.request
import ssl

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import common

PROJECT = "projects/rsops-test/locations/global/keyRings/sops"
KMS_AUDIENCE = "https://cloudkms.googleapis.com/"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
STS_AUDIENCE = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/oidc"
KEY_NAMES = ["sops", "denied", "disabled", "slow"]
SLOW_SECONDS = 60


def status_error(code: int, status: str, message: str):
    return {"error": {"code": code, "message": message, "status": status}}


class State:
    def __init__(self, state_dir):
        self.dir = state_dir
        self.tokens = common.Hs256()
        self.sa_key = common.rsa_key()
        self.sa_key_id = "rsops-test-key-1"
        self.sa_email = "sops@rsops-test.iam.gserviceaccount.com"
        self.idp_key = common.rsa_key()
        self.refresh_token = "refresh-" + base64.b32encode(os.urandom(10)).decode()
        self.user_secret = "user-secret-" + base64.b32encode(os.urandom(5)).decode()
        # Key material: fixed per run, so ciphertexts survive any number of calls.
        self.keys = {f"{PROJECT}/cryptoKeys/{n}": AESGCM.generate_key(256) for n in KEY_NAMES}

    def access_token(self, aud=KMS_AUDIENCE, lifetime=3600, subject="sops"):
        t = common.now()
        return self.tokens.mint(
            {"iss": "rsops-gcp-emulator", "sub": subject, "aud": aud, "iat": t, "exp": t + lifetime}
        )

    def token_response(self):
        return {"access_token": self.access_token(), "expires_in": 3600, "token_type": "Bearer"}

    def check_bearer(self, token):
        """None when the bearer token may call KMS, else why not."""
        if not token:
            return "the request has no bearer token"
        claims = self.tokens.verify(token)
        if claims is not None:
            if claims.get("aud") != KMS_AUDIENCE:
                return f"the token's audience {claims.get('aud')!r} is not Cloud KMS"
            return common.time_problem(claims)
        parsed = common.rs256_parse(token)
        if parsed is None:
            return "the bearer token is not a valid access token"
        header, claims, signing_input, signature = parsed
        if header.get("kid") != self.sa_key_id or claims.get("iss") != self.sa_email:
            return "the self-signed JWT is from an unknown service account key"
        if not common.rs256_valid(self.sa_key.public_key(), signing_input, signature):
            return "the self-signed JWT's signature does not verify"
        scopes = (claims.get("scope") or "").split()
        if CLOUD_PLATFORM not in scopes and claims.get("aud") != KMS_AUDIENCE:
            return "the self-signed JWT has neither the cloud-platform scope nor the KMS audience"
        return common.time_problem(claims)

    def info(self, https_port, mds_port):
        base = f"https://127.0.0.1:{https_port}"
        sa = {
            "type": "service_account",
            "project_id": "rsops-test",
            "private_key_id": self.sa_key_id,
            "private_key": common.pem_private(self.sa_key),
            "client_email": self.sa_email,
            "client_id": "1234567890",
            "auth_uri": f"{base}/auth",
            "token_uri": f"{base}/token",
            "universe_domain": "googleapis.com",
        }
        user = {
            "type": "authorized_user",
            "client_id": "rsops-test-client",
            "client_secret": self.user_secret,
            "refresh_token": self.refresh_token,
            "token_uri": f"{base}/token",
        }

        def subject_token(name, aud, lifetime):
            t = common.now()
            path = os.path.join(self.dir, f"oidc-{name}.jwt")
            with open(path, "w") as f:
                f.write(common.rs256_mint(
                    self.idp_key,
                    {"iss": "https://ci.example", "sub": "repo:rsops", "aud": aud,
                     "iat": t - 10, "exp": t + lifetime},
                ))
            return path

        def external(name, aud, lifetime):
            return {
                "type": "external_account",
                "audience": STS_AUDIENCE,
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "token_url": f"{base}/token",
                "credential_source": {"file": subject_token(name, aud, lifetime)},
            }

        files = {}
        for name, doc in [
            ("service_account", sa),
            ("authorized_user", user),
            ("external_account", external("valid", STS_AUDIENCE, 3600)),
            ("external_account_expired", external("expired", STS_AUDIENCE, -600)),
            ("external_account_wrong_audience", external("wrong-aud", "//iam.googleapis.com/other", 3600)),
        ]:
            path = os.path.join(self.dir, f"{name}.json")
            with open(path, "w") as f:
                json.dump(doc, f, indent=2)
            files[name] = path
        return {
            "endpoint": base,
            "metadata_host": f"127.0.0.1:{mds_port}",
            "ca": os.path.join(self.dir, "ca.pem"),
            "project": PROJECT,
            "files": files,
            "tokens": {
                "valid": self.access_token(),
                "expired": self.access_token(lifetime=-600),
                "wrong_audience": self.access_token(aud="https://storage.googleapis.com/"),
            },
        }


def make_kms_handler(state: State):
    class Kms(common.Handler):
        log_path = os.path.join(state.dir, "requests.log")

        def do_POST(self):
            path = urllib.parse.urlparse(self.path).path
            if path == "/token":
                return self.token()
            if path.startswith("/v1/") and ":" in path:
                return self.kms(path[len("/v1/"):])
            self.reply(404, status_error(404, "NOT_FOUND", f"no such method: {path}"))

        def kms(self, target):
            name, _, method = target.rpartition(":")
            name = urllib.parse.unquote(name)
            body = self.json_body()
            problem = state.check_bearer(self.bearer())
            if problem:
                return self.reply(
                    401,
                    status_error(401, "UNAUTHENTICATED", f"Request had invalid authentication credentials: {problem}"),
                    {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
                )
            if method not in ("encrypt", "decrypt") or body is None:
                return self.reply(400, status_error(400, "INVALID_ARGUMENT", "bad request"))
            if body.get("name") not in (None, name):
                return self.reply(400, status_error(400, "INVALID_ARGUMENT", "name in body and URL differ"))
            key = state.keys.get(name)
            if key is None:
                return self.reply(404, status_error(404, "NOT_FOUND", f"{name} not found."))
            short = name.rsplit("/", 1)[1]
            if short == "denied":
                return self.reply(403, status_error(
                    403, "PERMISSION_DENIED",
                    f"Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied on resource '{name}' (or it may not exist).",
                ))
            if short == "disabled":
                return self.reply(400, status_error(
                    400, "FAILED_PRECONDITION",
                    f"{name}/cryptoKeyVersions/1 is not enabled, current state is: DISABLED.",
                ))
            if method == "decrypt":
                delay = common.decrypt_delay(state.dir, short, SLOW_SECONDS if short == "slow" else 0)
                if delay:
                    time.sleep(delay)
            aad = base64.b64decode(body.get("additionalAuthenticatedData") or "")
            try:
                if method == "encrypt":
                    plaintext = base64.b64decode(body["plaintext"])
                    nonce = os.urandom(12)
                    ciphertext = nonce + AESGCM(key).encrypt(nonce, plaintext, name.encode() + aad)
                    return self.reply(200, {
                        "name": f"{name}/cryptoKeyVersions/1",
                        "ciphertext": base64.b64encode(ciphertext).decode(),
                        "verifiedPlaintextCrc32c": False,
                        "protectionLevel": "SOFTWARE",
                    })
                ciphertext = base64.b64decode(body["ciphertext"])
                plaintext = AESGCM(key).decrypt(ciphertext[:12], ciphertext[12:], name.encode() + aad)
            except Exception:
                return self.reply(400, status_error(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid."))
            self.reply(200, {
                "plaintext": base64.b64encode(plaintext).decode(),
                "usedPrimary": True,
                "protectionLevel": "SOFTWARE",
            })

        def token(self):
            raw = self.body()
            # OAuth clients post forms; Google's endpoints accept JSON too,
            # and some SDK flows (the refresh grant) use it.
            if "json" in (self.headers.get("Content-Type") or ""):
                try:
                    form = {k: str(v) for k, v in json.loads(raw).items()}
                except (json.JSONDecodeError, AttributeError):
                    form = {}
            else:
                form = dict(urllib.parse.parse_qsl(raw.decode()))
            grant = form.get("grant_type", "")
            deny = lambda why: self.reply(400, {"error": "invalid_grant", "error_description": why})
            if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                parsed = common.rs256_parse(form.get("assertion", ""))
                if parsed is None:
                    return deny("malformed assertion")
                header, claims, signing_input, signature = parsed
                if claims.get("iss") != state.sa_email or not common.rs256_valid(
                    state.sa_key.public_key(), signing_input, signature
                ):
                    return deny("Invalid JWT Signature.")
                if claims.get("aud") != f"https://127.0.0.1:{self.server.server_address[1]}/token":
                    return deny("Invalid JWT: wrong audience")
                problem = common.time_problem(claims)
                if problem:
                    return deny(f"Invalid JWT: {problem}")
                return self.reply(200, state.token_response())
            if grant == "refresh_token":
                if form.get("refresh_token") != state.refresh_token or form.get("client_secret") != state.user_secret:
                    return deny("Token has been expired or revoked.")
                return self.reply(200, state.token_response())
            if grant == "urn:ietf:params:oauth:grant-type:token-exchange":
                if form.get("audience") != STS_AUDIENCE:
                    return deny("The audience in the request does not match the pool provider.")
                parsed = common.rs256_parse(form.get("subject_token", ""))
                if parsed is None:
                    return deny("malformed subject token")
                _, claims, signing_input, signature = parsed
                if not common.rs256_valid(state.idp_key.public_key(), signing_input, signature):
                    return deny("The subject token's signature does not verify.")
                if claims.get("aud") != STS_AUDIENCE:
                    return deny("The audience in ID Token does not match the expected audience.")
                problem = common.time_problem(claims)
                if problem:
                    return deny(f"ID Token issued is stale to sign-in: {problem}")
                return self.reply(200, {
                    "access_token": state.access_token(),
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                })
            deny(f"unsupported grant_type {grant!r}")

    return Kms


def make_metadata_handler(state: State):
    class Metadata(common.Handler):
        log_path = os.path.join(state.dir, "requests.log")

        def do_GET(self):
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.reply(403, b"Missing Metadata-Flavor:Google header.", content_type="text/plain")
            path = urllib.parse.urlparse(self.path).path
            flavor = {"Metadata-Flavor": "Google"}
            text = {
                "/": b"",
                "/computeMetadata/v1/universe/universe-domain": b"googleapis.com",
                "/computeMetadata/v1/project/project-id": b"rsops-test",
                "/computeMetadata/v1/instance/service-accounts/default/email": state.sa_email.encode(),
            }
            if path in text:
                return self.reply(200, text[path], flavor, content_type="application/text")
            if path == "/computeMetadata/v1/instance/service-accounts/default/token":
                return self.reply(200, state.token_response(), flavor)
            self.reply(404, b"not found", flavor, content_type="text/plain")

    return Metadata


def client_encrypt(state_dir, key, plaintext_b64):
    """Wraps a data key through the running emulator's real encrypt call."""
    with open(os.path.join(state_dir, "info.json")) as f:
        info = json.load(f)
    name = f"{info['project']}/cryptoKeys/{key}"
    request = urllib.request.Request(
        f"{info['endpoint']}/v1/{name}:encrypt",
        data=json.dumps({"plaintext": plaintext_b64}).encode(),
        headers={"Authorization": f"Bearer {info['tokens']['valid']}", "Content-Type": "application/json"},
        method="POST",
    )
    context = ssl.create_default_context(cafile=info["ca"])
    with urllib.request.urlopen(request, context=context) as response:
        print(json.load(response)["ciphertext"])


def main():
    state_dir = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "encrypt":
        return client_encrypt(state_dir, sys.argv[3], sys.argv[4])
    state = State(state_dir)
    kms = common.serve(make_kms_handler(state), common.make_tls(state_dir))
    mds = common.serve(make_metadata_handler(state))
    common.write_info(state_dir, state.info(kms.server_address[1], mds.server_address[1]))
    common.run_until_stdin_closes()


if __name__ == "__main__":
    main()
