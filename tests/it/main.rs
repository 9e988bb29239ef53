//! Integration tests: they run the built `rsops` binary (and the reference
//! `sops` as an oracle) as subprocesses against real files.
//!
//! One test binary for the whole suite keeps link times down.

// Shared harness: temp dirs, age keys, running rsops and the reference.
mod util;

mod age_keys;
// Files encrypted by the reference decrypt byte-identically with rsops.
mod interop;
// Wrong keys, tampering, bad input: clear errors, reference exit codes, no plaintext.
mod negative;
// CLI surface: legacy flags, --output, --extract, stdin.
mod cli;
// PGP keys through gpg and key files: reference interop, vectors, gpg absent.
mod pgp;
// exec-env / exec-file with real processes: stdio server, FIFOs, signals, cleanup.
mod exec;
// Vault / OpenBao transit against a real OpenBao dev server: interop, tokens, allow-list, outages.
mod vault;
// AWS KMS against LocalStack: reference interop, contexts, roles, profiles, failures.
mod aws;
// Runs the GCP/Azure KMS emulators and builds reference files with cloud entries.
mod cloud_emulator;
// GCP Cloud KMS through the emulator: every credential path, errors, deadlines.
mod gcp;
// Azure Key Vault through the emulator: secret, workload and managed identity, errors.
mod azure;
// Key services that never answer: no delay for usable keys, deadlines, full reports.
mod deadlines;
mod encrypt;
// `edit` with EDITOR scripts: untouched ciphertexts, exit codes, new files, signals, cleanup.
mod edit;
mod encrypt_aws;
mod encrypt_azure;
mod encrypt_gcp;
mod encrypt_vault;
// Files large enough to be read, decrypted and printed on every core.
mod large;
mod metadata_write;
// set and unset: same changes as the reference, untouched ciphertext kept, safe writes.
mod set;
// rotate, updatekeys, groups add|delete: the reference's layouts and reports.
mod rekey;
// The git merge driver: three-way merges, conflicts, a real `git merge`.
mod merge_driver;
// rsops mcp: scan, protect (byte-for-byte elsewhere, idempotent, reference decrypts), snippets,
// and a real MCP client (the Python SDK) launching protected entries.
mod mcp;
