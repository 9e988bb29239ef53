//! rsops: a fast, SOPS-compatible secrets decryptor.
//!
//! The library opens files the reference `sops` encrypted and decrypts them
//! with whichever key the caller can reach.

pub mod formats;
pub mod gofmt;
pub mod tree;
