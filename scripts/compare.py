#!/usr/bin/env python3
"""Whole-process comparison of rsops against the reference sops.

Generates a small dotenv file and large YAML/JSON files (60k leaves),
encrypts them with the reference sops under a throw-away age key, checks that
rsops prints exactly what sops prints, then times both (median wall time of
several runs, after one untimed run each) and reports peak memory (max RSS),
the ratios and the machine's load, for `decrypt`, for `encrypt` (whose output the reference must decrypt
back to the plaintext), for `set` of one value and for `edit` (both results
must decrypt alike). `edit` is timed whole, and from the moment the editor
is done to the end (the re-encryption: reading the text back, encrypting it
and writing the file), which the editor script marks.

Usage: scripts/compare.py [--rsops target/release/rsops] [--runs 5] [--leaves 60000]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def age_keypair(venv_python):
    out = subprocess.check_output([
        venv_python, "-c",
        "import pyrage; i = pyrage.x25519.Identity.generate(); print(i); print(i.to_public())",
    ], text=True).split()
    return out[0], out[1]


def ensure_venv():
    venv = os.path.join(ROOT, ".venv")
    if not os.path.exists(os.path.join(venv, "bin", "sops")):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
        subprocess.check_call([os.path.join(venv, "bin", "pip"), "install", "--quiet", "-r",
                               os.path.join(ROOT, "tests", "requirements.txt")])
    if subprocess.call([os.path.join(venv, "bin", "python"), "-c", "import pyrage"],
                       stderr=subprocess.DEVNULL) != 0:
        subprocess.check_call([os.path.join(venv, "bin", "pip"), "install", "--quiet", "pyrage"])
    return os.path.join(venv, "bin", "sops"), os.path.join(venv, "bin", "python")


def large_tree(leaves):
    sections = max(1, leaves // 60)
    tree = {}
    for s in range(sections):
        section = {}
        for k in range(60):
            section[f"key_{k:02d}"] = f"value {s}-{k} " + "x" * 40
        tree[f"section_{s:05d}"] = section
    return tree


def to_yaml(tree):
    lines = []
    for name, section in tree.items():
        lines.append(f"{name}:")
        for k, v in section.items():
            lines.append(f"    {k}: {v}")
    return "\n".join(lines) + "\n"


def measure(cmd, env, runs):
    """Median wall time of `runs` runs after one untimed (warm-up) run, and
    peak RSS in MiB of one more run.

    The warm-up run takes what the tool timed before left cold (the page
    cache, memory the kernel has to fault in again), so each tool is timed
    as it runs one invocation after another. Before it, what the tool timed
    before left unwritten is flushed to disk: the reference does not sync
    what it writes, and rsops' own `fsync` would otherwise wait behind it.
    Peak RSS comes from GNU time: a child forked straight from this (large)
    Python process would report Python's own high-water mark.
    """
    walls = []
    settle()
    warm_up(cmd, env)
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        walls.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {proc.stderr.decode()}")
    return statistics.median(walls), peak_rss(cmd, env)


def settle():
    """Flushes every file written so far to disk."""
    os.sync()


def warm_up(cmd, env):
    """Runs `cmd` once, untimed."""
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def peak_rss(cmd, env):
    """Peak RSS in MiB of one run of `cmd`."""
    timed = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return int(timed.stderr.decode().strip().splitlines()[-1]) / 1024


def measure_edit(cmd, env, runs, mark):
    """Like `measure` for `edit`, whose editor writes the time it finished
    (in nanoseconds) to `mark`: also the median time from then to the end."""
    walls, after = [], []
    settle()
    warm_up(cmd, env)
    for _ in range(runs):
        start = time.time_ns()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.time_ns()
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {proc.stderr.decode()}")
        with open(mark) as f:
            done = int(f.read())
        walls.append((end - start) / 1e9)
        after.append((end - done) / 1e9)
    return statistics.median(walls), peak_rss(cmd, env), statistics.median(after)


def ours_runs(runs):
    """rsops takes milliseconds: time it more often than the reference, whose
    runs take seconds, so one slow run on a shared machine does not decide."""
    return max(runs, 9)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rsops", default=os.path.join(ROOT, "target", "release", "rsops"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--leaves", type=int, default=60000)
    args = parser.parse_args()
    load_before = os.getloadavg()

    sops, venv_python = ensure_venv()
    secret, recipient = age_keypair(venv_python)
    work = tempfile.mkdtemp(prefix="rsops-compare-")
    try:
        key_file = os.path.join(work, "keys.txt")
        with open(key_file, "w") as f:
            f.write(secret + "\n")
        env = {"PATH": os.environ["PATH"], "HOME": work, "SOPS_AGE_KEY_FILE": key_file,
               "SOPS_DISABLE_VERSION_CHECK": "1"}

        tree = large_tree(args.leaves)
        plain = {
            "small.env": "".join(f"SECRET_{i}=value-{i}-abcdefghijklmnop\n" for i in range(7)),
            "large.yaml": to_yaml(tree),
            "large.json": json.dumps(tree, indent="\t") + "\n",
        }
        results = []
        for name, text in plain.items():
            path = os.path.join(work, name)
            with open(path, "w") as f:
                f.write(text)
            stem, ext = os.path.splitext(name)
            enc = os.path.join(work, f"{stem}.enc{ext}")
            with open(enc, "wb") as f:
                subprocess.check_call([sops, "encrypt", "--age", recipient, path], env=env, stdout=f)
            expected = subprocess.check_output([sops, "decrypt", enc], env=env)
            got = subprocess.check_output([args.rsops, "decrypt", enc], env=env)
            if expected != got:
                raise SystemExit(f"{name}: rsops output differs from sops")
            runs = args.runs if name != "small.env" else args.runs * 4
            sops_wall, sops_rss = measure([sops, "decrypt", enc], env, runs)
            ours_wall, ours_rss = measure([args.rsops, "decrypt", enc], env, ours_runs(runs))
            size = os.path.getsize(enc)
            results.append(("decrypt " + name, size, sops_wall, sops_rss, ours_wall, ours_rss))

            ours_enc = os.path.join(work, f"{stem}.ours{ext}")
            with open(ours_enc, "wb") as f:
                subprocess.check_call([args.rsops, "encrypt", "--age", recipient, path],
                                      env=env, stdout=f)
            back = subprocess.check_output([sops, "decrypt", ours_enc], env=env)
            if back != expected:
                raise SystemExit(f"{name}: sops does not read rsops' encryption back")
            enc_runs = max(1, runs // 2)
            sops_wall, sops_rss = measure([sops, "encrypt", "--age", recipient, path], env, enc_runs)
            ours_wall, ours_rss = measure([args.rsops, "encrypt", "--age", recipient, path], env,
                                          ours_runs(enc_runs))
            results.append(("encrypt " + name, os.path.getsize(path), sops_wall, sops_rss,
                            ours_wall, ours_rss))

            if name == "small.env":
                index, value = '["SECRET_3"]', '"changed"'
            else:
                index, value = '["section_00000"]["key_00"]', '"changed"'
            copies = {}
            for who in ("sops", "rsops"):
                copies[who] = os.path.join(work, f"{stem}.set-{who}{ext}")
                shutil.copyfile(enc, copies[who])
            sops_wall, sops_rss = measure([sops, "set", copies["sops"], index, value], env,
                                          enc_runs)
            ours_wall, ours_rss = measure([args.rsops, "set", copies["rsops"], index, value],
                                          env, ours_runs(enc_runs))
            if (subprocess.check_output([sops, "decrypt", copies["rsops"]], env=env)
                    != subprocess.check_output([sops, "decrypt", copies["sops"]], env=env)):
                raise SystemExit(f"{name}: rsops set differs from sops set")
            results.append(("set " + name, size, sops_wall, sops_rss, ours_wall, ours_rss))

            # `edit` with an editor that lengthens the first value and notes
            # when it is done: each timed run edits the file the run before
            # wrote. One more edit of a fresh copy by each tool must decrypt
            # alike.
            mark = os.path.join(work, "editor-done")
            editor = os.path.join(work, "editor.sh")
            with open(editor, "w") as f:
                f.write(f"#!/bin/sh\nsed -i 0,/lue/s/lue/luee/ \"$1\" || exit 1\n"
                        f"date +%s%N > '{mark}'\n")
            os.chmod(editor, 0o755)
            edit_env = dict(env, EDITOR=editor)
            sops_wall, sops_rss, sops_after = measure_edit([sops, "edit", copies["sops"]],
                                                           edit_env, enc_runs, mark)
            ours_wall, ours_rss, ours_after = measure_edit(
                [args.rsops, "edit", copies["rsops"]], edit_env, ours_runs(enc_runs), mark)
            for who, tool in (("sops", sops), ("rsops", args.rsops)):
                shutil.copyfile(enc, copies[who])
                subprocess.check_call([tool, "edit", copies[who]], env=edit_env)
            if (subprocess.check_output([sops, "decrypt", copies["rsops"]], env=env)
                    != subprocess.check_output([sops, "decrypt", copies["sops"]], env=env)):
                raise SystemExit(f"{name}: rsops edit differs from sops edit")
            results.append(("edit " + name, size, sops_wall, sops_rss, ours_wall, ours_rss))
            results.append(("  re-encryption", size, sops_after, sops_rss, ours_after, ours_rss))

        load_after = os.getloadavg()
        print(f"machine: {os.cpu_count()} cores; load average (1 min) {load_before[0]:.2f} "
              f"before the runs, {load_after[0]:.2f} after")
        print(f"{'file':<20} {'input':>10} {'sops':>10} {'rsops':>10} {'speed-up':>9} "
              f"{'sops RSS':>9} {'rsops RSS':>10} {'memory':>7}")
        for name, size, sw, sr, ow, orss in results:
            print(f"{name:<20} {size / 1e6:>8.2f}MB {sw * 1000:>8.1f}ms {ow * 1000:>8.1f}ms "
                  f"{sw / ow:>8.1f}x {sr:>7.1f}MB {orss:>8.1f}MB {orss / sr:>6.0%}")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
