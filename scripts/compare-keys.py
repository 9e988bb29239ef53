#!/usr/bin/env python3
"""Key unwrapping under a dead key service: rsops against the reference sops.

A loopback listener accepts connections and never answers (a KMS or Vault
that hangs). Files get entries pointing at it next to a usable age key, and
both tools decrypt with the dead entries preferred (`SOPS_DECRYPTION_ORDER`),
as a user whose config lists the KMS first would see:

  dead-first     one group: hc_vault + kms entries at the dead listener, then age
  no-usable-key  the same file with no age key available: both must fail
  shamir-2of3    three groups, threshold 2, one group's only entry is dead

Reports wall time per tool and the ratio. The reference is capped at
--cap seconds (it has no deadline of its own for some services).

Usage: scripts/compare-keys.py [--rsops target/release/rsops] [--cap 90]
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dead_listener():
    """Accepts connections and never answers; returns the port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held = []

    def serve():
        while True:
            conn, _ = server.accept()
            held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def keypair(python):
    out = subprocess.check_output([
        python, "-c",
        "import pyrage; i = pyrage.x25519.Identity.generate(); print(i); print(i.to_public())",
    ], text=True).split()
    return out[0], out[1]


def dead_entries(port, indent):
    pad = " " * indent
    return (
        f"{pad}hc_vault:\n"
        f"{pad}    - vault_address: http://127.0.0.1:{port}\n"
        f"{pad}      engine_path: sops\n"
        f"{pad}      key_name: dead\n"
        f"{pad}      created_at: \"2026-01-01T00:00:00Z\"\n"
        f"{pad}      enc: vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        f"{pad}kms:\n"
        f"{pad}    - arn: arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000\n"
        f"{pad}      created_at: \"2026-01-01T00:00:00Z\"\n"
        f"{pad}      enc: AQICAHhAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n"
        f"{pad}      aws_profile: \"\"\n"
    )


def run(cmd, env, cap):
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=cap)
        code = proc.returncode
        out = proc.stdout
    except subprocess.TimeoutExpired:
        code, out = "timeout", b""
    return time.perf_counter() - start, code, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rsops", default=os.path.join(ROOT, "target", "release", "rsops"))
    parser.add_argument("--cap", type=float, default=90)
    args = parser.parse_args()

    venv = os.path.join(ROOT, ".venv", "bin")
    sops, python = os.path.join(venv, "sops"), os.path.join(venv, "python")
    port = dead_listener()
    work = tempfile.mkdtemp(prefix="rsops-keys-")
    try:
        keys = [keypair(python) for _ in range(3)]
        key_file = os.path.join(work, "keys.txt")
        plain = os.path.join(work, "plain.yaml")
        with open(plain, "w") as f:
            f.write("token: abc\nnested:\n    password: hunter2\n")
        base_env = {
            "PATH": os.environ["PATH"], "HOME": work, "SOPS_DISABLE_VERSION_CHECK": "1",
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "VAULT_TOKEN": "root", "SOPS_DECRYPTION_ORDER": "hc_vault,kms,age",
        }

        # One group: dead entries plus age.
        with open(os.path.join(work, ".sops.yaml"), "w") as f:
            f.write(f"creation_rules:\n  - age: {keys[0][1]}\n")
        one = subprocess.check_output([sops, "encrypt", plain], env=base_env, cwd=work, text=True)
        one = one.replace("sops:\n", "sops:\n" + dead_entries(port, 4), 1)
        one_path = os.path.join(work, "one.enc.yaml")
        open(one_path, "w").write(one)

        # Shamir 2 of 3: group 2's only entry is dead.
        groups = "".join(f"      - age:\n          - {k[1]}\n" for k in keys)
        with open(os.path.join(work, ".sops.yaml"), "w") as f:
            f.write(f"creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n{groups}")
        shamir = subprocess.check_output([sops, "encrypt", plain], env=base_env, cwd=work, text=True)
        second = keys[1][1]
        start = shamir.index(f"- recipient: {second}")
        end = shamir.index("-----END AGE ENCRYPTED FILE-----", start) + len("-----END AGE ENCRYPTED FILE-----\n")
        group_indent = shamir.rindex("\n", 0, shamir.rindex("age:", 0, start)) + 1
        age_line_start = shamir.rindex("age:", 0, start)
        shamir = shamir[:age_line_start] + dead_entries(port, 0).strip().replace(
            "\n", "\n" + " " * (age_line_start - group_indent)) + "\n" + shamir[end:]
        # sops 3.11 writes an empty `hc_vault: []` in every group: let ours replace it.
        shamir = re.sub(r"- hc_vault: \[\]\n( +)hc_vault:", "- hc_vault:", shamir)
        shamir_path = os.path.join(work, "shamir.enc.yaml")
        open(shamir_path, "w").write(shamir)

        cases = [
            ("dead-first", one_path, [keys[0][0]]),
            ("no-usable-key", one_path, []),
            ("shamir-2of3", shamir_path, [keys[0][0], keys[2][0]]),
        ]
        print(f"{'case':<14} {'sops':>12} {'rsops':>12} {'ratio':>8}  exit codes (sops / rsops)")
        for name, path, secrets in cases:
            with open(key_file, "w") as f:
                f.write("".join(s + "\n" for s in secrets))
            env = dict(base_env, SOPS_AGE_KEY_FILE=key_file)
            s_time, s_code, s_out = run([sops, "decrypt", path], env, args.cap)
            r_time, r_code, r_out = run([args.rsops, "decrypt", path], env, args.cap)
            if s_code == 0 and r_code == 0 and s_out != r_out:
                raise SystemExit(f"{name}: outputs differ")
            shown = ">" if s_code == "timeout" else ""
            print(f"{name:<14} {shown}{s_time * 1000:>10.0f}ms {r_time * 1000:>10.0f}ms "
                  f"{s_time / r_time:>7.0f}x  {s_code} / {r_code}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
