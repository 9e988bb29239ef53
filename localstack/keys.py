"""Waits for a freshly started LocalStack and creates the rsops test keys.

Run by `localstack/start` with the venv's Python. Keys get fixed ids and key
material (LocalStack's `_custom_id_` / `_custom_key_material_` tags), so
their ARNs never change and files encrypted under them in one run decrypt in
every later run. Prints only `export NAME=value` lines on stdout.
"""

import base64
import hashlib
import json
import os
import sys
import time
import urllib.request

import boto3

ACCOUNT = "000000000000"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/rsops-test"

# name -> (region, key id); the material is derived from the id, 32 bytes.
KEYS = {
    "RSOPS_TEST_KMS_ARN": ("us-east-1", "3f2c4b1a-5d6e-4f70-8a9b-0c1d2e3f4a01"),
    "RSOPS_TEST_KMS_ARN_EU": ("eu-west-1", "3f2c4b1a-5d6e-4f70-8a9b-0c1d2e3f4a02"),
    "RSOPS_TEST_KMS_DISABLED_ARN": ("us-east-1", "3f2c4b1a-5d6e-4f70-8a9b-0c1d2e3f4a03"),
}
ALIAS = "alias/rsops-test"


def wait_healthy(endpoint, pid, deadline):
    """Polls the health endpoint until KMS and STS run, or gives up."""
    url = f"{endpoint}/_localstack/health"
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit("localstack exited during startup")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                services = json.load(response).get("services", {})
            last = f"kms={services.get('kms')}, sts={services.get('sts')}"
            if services.get("kms") == "running" and services.get("sts") == "running":
                return
        except OSError as e:
            last = str(e)
        time.sleep(0.25)
    sys.exit(f"localstack did not become healthy in time ({last})")


def material(key_id):
    return base64.b64encode(hashlib.sha256(key_id.encode()).digest()).decode()


def client(service, endpoint, region):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def main():
    endpoint, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    wait_healthy(endpoint, pid, time.monotonic() + timeout)

    exports = {"RSOPS_TEST_AWS_ENDPOINT": endpoint, "RSOPS_TEST_KMS_ROLE_ARN": ROLE_ARN}
    for name, (region, key_id) in KEYS.items():
        kms = client("kms", endpoint, region)
        key = kms.create_key(
            Description=f"rsops test key {name}",
            Tags=[
                {"TagKey": "_custom_id_", "TagValue": key_id},
                {"TagKey": "_custom_key_material_", "TagValue": material(key_id)},
            ],
        )["KeyMetadata"]
        exports[name] = key["Arn"]
        if name == "RSOPS_TEST_KMS_ARN":
            kms.create_alias(AliasName=ALIAS, TargetKeyId=key_id)
            exports["RSOPS_TEST_KMS_ALIAS_ARN"] = f"arn:aws:kms:{region}:{ACCOUNT}:{ALIAS}"
        if name == "RSOPS_TEST_KMS_DISABLED_ARN":
            # A ciphertext made while the key was enabled, for the
            # disabled-key test: decrypting it must now be refused.
            blob = kms.encrypt(KeyId=key_id, Plaintext=b"\x01" * 32)["CiphertextBlob"]
            exports["RSOPS_TEST_KMS_DISABLED_ENC"] = base64.b64encode(blob).decode()
            kms.disable_key(KeyId=key_id)

    for name, value in exports.items():
        print(f"export {name}={value}")


if __name__ == "__main__":
    main()
