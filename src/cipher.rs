//! `ENC[AES256_GCM,…]` values: AES-256-GCM with sops' 32-byte nonce, the
//! value's path as additional authenticated data, and a type tag that says
//! how to turn the plaintext back into a native value.

use std::sync::OnceLock;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine;
use regex::Regex;
use rsops_keysource::DataKey;
use zeroize::Zeroizing;

use crate::tree::{Comment, Value};

/// AES-256-GCM with the 32-byte nonce sops uses.
type SopsAesGcm = AesGcm<Aes256, U32>;

/// Why a single value could not be decrypted. Never carries plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CipherError {
    /// The value is not an `ENC[AES256_GCM,…]` string.
    #[error("the value is not in sops' ENC[AES256_GCM,...] format")]
    NotEncrypted,
    /// One of the base64 fields does not decode.
    #[error("the {0} field of the ENC[...] value is not valid base64")]
    BadBase64(&'static str),
    /// The nonce or tag has an impossible length.
    #[error("the ENC[...] value has a {0} of the wrong length")]
    BadLength(&'static str),
    /// Authentication failed: wrong key, tampered value, or moved value.
    #[error(
        "authentication failed (the value was tampered with, moved, or the data key is wrong)"
    )]
    Authentication,
    /// The `type:` is not one the reference writes.
    #[error("unknown value type `{0}`")]
    UnknownType(String),
    /// The operating system's random source failed.
    #[error("no randomness from the operating system for a nonce")]
    Random,
    /// The plaintext does not parse as its declared type.
    #[error("the decrypted value is not a valid `{0}`")]
    BadPlaintext(&'static str),
}

/// The pieces of an `ENC[...]` string.
struct Parsed<'a> {
    data: &'a str,
    iv: &'a str,
    tag: &'a str,
    kind: &'a str,
    /// No line break anywhere (the fields need no cleaning before decoding).
    unbroken: bool,
}

fn enc_pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    // The reference's own pattern, greedy groups and unanchored end included.
    PATTERN.get_or_init(|| {
        Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
            .expect("static pattern is valid")
    })
}

fn parse(value: &str) -> Result<Parsed<'_>, CipherError> {
    // Fast path for well-formed values: base64 never contains `,` or `]`.
    // A line break is left to the pattern, whose `.` does not match one
    // (neither does Go's), so such a value is refused as the reference does.
    if let Some(rest) = value.strip_prefix("ENC[AES256_GCM,data:") {
        let bytes = rest.as_bytes();
        let mut commas = memchr::memchr_iter(b',', bytes);
        let unbroken = memchr::memchr2(b'\n', b'\r', bytes).is_none();
        if let (Some(a), Some(b), Some(c), true) =
            (commas.next(), commas.next(), commas.next(), unbroken)
        {
            let (data, iv, tag, kind) =
                (&rest[..a], &rest[a + 1..b], &rest[b + 1..c], &rest[c + 1..]);
            if let (Some(iv), Some(tag), Some(kind)) = (
                iv.strip_prefix("iv:"),
                tag.strip_prefix("tag:"),
                kind.strip_prefix("type:").and_then(|k| k.strip_suffix(']')),
            ) {
                if !data.is_empty()
                    && !iv.is_empty()
                    && !tag.is_empty()
                    && !kind.is_empty()
                    && !kind.contains([',', ']'])
                {
                    return Ok(Parsed {
                        data,
                        iv,
                        tag,
                        kind,
                        unbroken,
                    });
                }
            }
        }
    }
    let caps = enc_pattern()
        .captures(value)
        .ok_or(CipherError::NotEncrypted)?;
    let group = |i| caps.get(i).map_or("", |m| m.as_str());
    Ok(Parsed {
        data: group(1),
        iv: group(2),
        tag: group(3),
        kind: group(4),
        unbroken: false,
    })
}

/// Go's `base64.StdEncoding`, which the reference decodes `ENC[...]` fields
/// with: padding is required, but the unused bits of the last character need
/// not be zero (a file edited by another tool may carry such values), and
/// line breaks anywhere are skipped.
const GO_STD_ENCODING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

fn has_line_break(text: &str) -> bool {
    text.bytes().any(|b| b == b'\r' || b == b'\n')
}

/// Decodes a base64 field ([`GO_STD_ENCODING`]) into a new buffer.
fn decode_base64(field: &'static str, text: &str) -> Result<Vec<u8>, CipherError> {
    let decoded = if has_line_break(text) {
        let compact: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        GO_STD_ENCODING.decode(compact)
    } else {
        GO_STD_ENCODING.decode(text)
    };
    decoded.map_err(|_| CipherError::BadBase64(field))
}

/// Decodes a base64 field that must hold exactly `N` bytes, without
/// allocating: `Ok(None)` when it is valid base64 of another length.
/// `unbroken` when the field is already known to hold no line break.
fn decode_fixed<const N: usize>(
    field: &'static str,
    text: &str,
    unbroken: bool,
) -> Result<Option<[u8; N]>, CipherError> {
    let mut buf = [0u8; 64];
    if text.len() <= 84 && (unbroken || !has_line_break(text)) {
        return match GO_STD_ENCODING.decode_slice(text, &mut buf) {
            Ok(n) if n == N => {
                let mut out = [0u8; N];
                out.copy_from_slice(&buf[..N]);
                Ok(Some(out))
            }
            Ok(_) => Ok(None),
            Err(base64::DecodeSliceError::DecodeError(_)) => Err(CipherError::BadBase64(field)),
            Err(base64::DecodeSliceError::OutputSliceTooSmall) => Ok(None),
        };
    }
    let decoded = decode_base64(field, text)?;
    Ok(<[u8; N]>::try_from(decoded.as_slice()).ok())
}

/// The `ENC[...]` strings of a file as it was decrypted, indexed by path,
/// type and plaintext: the reference's IV stash (`aes.Cipher.stash`), which
/// makes `edit`, `set` and friends rewrite only the values they change, so
/// a `git diff` shows those, the MAC and `lastmodified`.
///
/// Re-encrypting the same plaintext at the same path under the same key
/// with the stored IV gives the stored string again, so handing that string
/// back is exactly the reference's behaviour without the AES work. Unlike
/// the reference, equal values under one path (list items) each keep their
/// own ciphertext instead of sharing the last one's IV. The stash holds
/// digests, never plaintext ([`StashDigest`]), and lives as long as the
/// decrypted tree it describes.
///
/// The strings are kept in the order they were decrypted, and are nearly
/// always asked for again in that order (a change touches a few values),
/// so each lookup first tries the entry after the last one taken. The
/// first few misses (a changed value, and the one after it) scan the
/// digests in order; only more misses build (once) an index of every
/// digest, which costs a large stash as much as many scans.
#[derive(Default)]
pub struct Stash {
    /// Every value's place, in order.
    entries: Vec<StashSlot>,
    /// Where the next lookup looks first.
    cursor: usize,
    /// How many misses scanned the entries.
    scans: usize,
    /// Built after [`Stash::MAX_SCANS`] misses: each digest's first entry,
    /// and for every entry the next one with the same digest.
    index: Option<DigestIndex>,
}

/// A value's place in a [`Stash`]: the digest of its plaintext, type and
/// path, and the `ENC[...]` string it had (`None` once taken, or if empty).
pub(crate) type StashSlot = (StashDigest, Option<String>);

/// What a [`Stash`] knows a value by: a 128-bit SipHash-1-3 of its path,
/// type and plaintext under a key derived from the data key (see
/// [`ValueCipher::stash_digest_of`]). Keyed, so that nobody without the
/// data key can pick a changed value whose digest matches an old one (which
/// would bring the old ciphertext back), or test a guess at a plaintext
/// against a digest; a pseudo-random function of 128 bits, so that chance
/// never does. Half a SHA-256 digest's cost or less on short values (a
/// large file asks for one per value on every edit).
pub(crate) type StashDigest = [u8; 16];

/// Where a stash's digests are, for lookups out of order.
struct DigestIndex {
    first: std::collections::HashMap<StashDigest, usize, DigestBuildHasher>,
    next: Vec<usize>,
}

/// Hashes a digest by its first eight bytes: they are already uniformly
/// spread, and an attacker who could pick values to collide them would only
/// slow the lookup down.
#[derive(Default)]
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

type DigestBuildHasher = std::hash::BuildHasherDefault<DigestHasher>;

impl Stash {
    /// Remembers `sealed` as the `ENC[...]` string of the value whose
    /// digest ([`ValueCipher::stash_digest_of`]) is `digest`.
    pub(crate) fn record(&mut self, digest: StashDigest, sealed: &str) {
        self.entries.push((digest, Some(sealed.to_string())));
        self.index = None;
    }

    /// Misses answered by a scan before an index is built.
    const MAX_SCANS: usize = 8;

    /// Adds `n` empty places for values, in order after those remembered
    /// so far, to be filled in place (by the cores decrypting them) with a
    /// digest from [`ValueCipher::decrypt_digest`] and its `ENC[...]`
    /// string; a place left empty is never found.
    pub(crate) fn slots(&mut self, n: usize) -> &mut [StashSlot] {
        let start = self.entries.len();
        self.entries.resize(start + n, ([0; 16], None));
        self.index = None;
        &mut self.entries[start..]
    }

    /// Takes back the first `ENC[...]` string not yet taken that was
    /// remembered under `digest` (see [`ValueCipher::stash_digest`]).
    pub(crate) fn take_digest(&mut self, digest: &StashDigest) -> Option<String> {
        let at = self.find(digest)?;
        self.entries[at].1.take()
    }

    /// Where the first string not yet taken with `digest` is.
    fn find(&mut self, digest: &StashDigest) -> Option<usize> {
        if let Some((d, Some(_))) = self.entries.get(self.cursor) {
            if d == digest {
                self.cursor += 1;
                return Some(self.cursor - 1);
            }
        }
        if self.index.is_none() && self.scans < Self::MAX_SCANS {
            self.scans += 1;
            let at = self
                .entries
                .iter()
                .position(|(d, sealed)| sealed.is_some() && d == digest)?;
            self.cursor = at + 1;
            return Some(at);
        }
        let index = self
            .index
            .get_or_insert_with(|| DigestIndex::new(&self.entries));
        let mut at = *index.first.get(digest)?;
        loop {
            if self.entries[at].1.is_some() {
                self.cursor = at + 1;
                return Some(at);
            }
            at = index.next[at];
            if at == usize::MAX {
                return None;
            }
        }
    }
}

impl DigestIndex {
    fn new(entries: &[StashSlot]) -> DigestIndex {
        let mut first =
            std::collections::HashMap::with_capacity_and_hasher(entries.len(), Default::default());
        let mut next = vec![usize::MAX; entries.len()];
        for (at, (digest, _)) in entries.iter().enumerate().rev() {
            if let Some(later) = first.insert(*digest, at) {
                next[at] = later;
            }
        }
        DigestIndex { first, next }
    }
}

impl std::fmt::Debug for Stash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stash")
            .field("values", &self.entries.len())
            .finish()
    }
}

/// Told each decrypted value's `type:` tag and plaintext (to stash it).
type SeenPlaintext<'s> = dyn FnMut(&str, &[u8]) + 's;

/// Decrypts `ENC[...]` values with one data key.
pub struct ValueCipher {
    aead: SopsAesGcm,
    /// The key of its [`StashDigest`]s.
    digest_key: Zeroizing<[u8; 16]>,
}

impl ValueCipher {
    /// A cipher for the file's data key.
    pub fn new(data_key: &DataKey) -> Self {
        let key = aes_gcm::Key::<SopsAesGcm>::from_slice(data_key.expose());
        ValueCipher {
            aead: SopsAesGcm::new(key),
            digest_key: stash_digest_key(data_key),
        }
    }

    /// The digest under which a [`Stash`] remembers a value at `aad` of
    /// type `kind` whose plaintext is `plain`.
    pub(crate) fn stash_digest_of(&self, aad: &str, kind: &str, plain: &[u8]) -> StashDigest {
        use siphasher::sip128::{Hasher128, SipHasher13};
        use std::hash::Hasher;
        let mut hasher = SipHasher13::new_with_key(&self.digest_key);
        for part in [aad.as_bytes(), kind.as_bytes(), plain] {
            hasher.write(&(part.len() as u64).to_le_bytes());
            hasher.write(part);
        }
        hasher.finish128().as_bytes()
    }

    /// Decrypts one value whose additional data is `aad` (the path, e.g. `db:password:`).
    ///
    /// An empty string is returned unchanged, as the reference never encrypts it.
    pub fn decrypt(&self, value: &str, aad: &str) -> Result<Value, CipherError> {
        self.open(value, aad, None)
    }

    /// Decrypts like [`ValueCipher::decrypt`] and remembers the `ENC[...]`
    /// string in `stash`, so re-encrypting the same plaintext at the same
    /// path yields it again (see [`Stash`]).
    pub fn decrypt_stashing(
        &self,
        value: &str,
        aad: &str,
        stash: &mut Stash,
    ) -> Result<Value, CipherError> {
        self.open(
            value,
            aad,
            Some(&mut |kind: &str, plain: &[u8]| {
                stash.record(self.stash_digest_of(aad, kind, plain), value)
            }),
        )
    }

    /// Decrypts like [`ValueCipher::decrypt`] and returns the digest under
    /// which a [`Stash`] remembers the value (`None` for an
    /// empty value, which is not remembered).
    pub(crate) fn decrypt_digest(
        &self,
        value: &str,
        aad: &str,
    ) -> Result<(Value, Option<StashDigest>), CipherError> {
        let mut digest = None;
        let plain = self.open(
            value,
            aad,
            Some(&mut |kind: &str, plain: &[u8]| {
                digest = Some(self.stash_digest_of(aad, kind, plain));
            }),
        )?;
        Ok((plain, digest))
    }

    fn open(
        &self,
        value: &str,
        aad: &str,
        seen: Option<&mut SeenPlaintext<'_>>,
    ) -> Result<Value, CipherError> {
        if value.is_empty() {
            return Ok(Value::Str(String::new()));
        }
        let mut plain = Zeroizing::new(Vec::new());
        let kind = self.open_into(value, aad, &mut plain)?;
        if let Some(seen) = seen {
            seen(kind, &plain);
        }
        typed_value(kind, plain)
    }

    /// Decodes and decrypts a non-empty `ENC[...]` string into `plain`
    /// (cleared first: the decoded buffer is decrypted where it is) and
    /// returns its `type:` tag.
    pub(crate) fn open_into<'v>(
        &self,
        value: &'v str,
        aad: &str,
        plain: &mut Vec<u8>,
    ) -> Result<&'v str, CipherError> {
        plain.clear();
        self.open_appending(value, aad, plain)
    }

    /// Decodes and decrypts a non-empty `ENC[...]` string after what `out`
    /// holds, where it is decoded, and returns its `type:` tag. On failure
    /// `out` is as it was (a value fails before anything is decrypted).
    pub(crate) fn open_appending<'v>(
        &self,
        value: &'v str,
        aad: &str,
        out: &mut Vec<u8>,
    ) -> Result<&'v str, CipherError> {
        let start = out.len();
        let opened = self.open_at(value, aad, out, start);
        if opened.is_err() {
            out.truncate(start);
        }
        opened
    }

    fn open_at<'v>(
        &self,
        value: &'v str,
        aad: &str,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<&'v str, CipherError> {
        let parsed = parse(value)?;
        if !parsed.unbroken && has_line_break(parsed.data) {
            out.extend_from_slice(&decode_base64("data", parsed.data)?);
        } else {
            GO_STD_ENCODING
                .decode_vec(parsed.data, out)
                .map_err(|_| CipherError::BadBase64("data"))?;
        }
        let iv = decode_fixed::<32>("iv", parsed.iv, parsed.unbroken)?;
        let tag = decode_fixed::<16>("tag", parsed.tag, parsed.unbroken)?;
        let iv = iv.ok_or(CipherError::BadLength("iv"))?;
        let tag = tag.ok_or(CipherError::BadLength("tag"))?;
        self.aead
            .decrypt_in_place_detached(
                (&iv).into(),
                aad.as_bytes(),
                &mut out[start..],
                (&tag).into(),
            )
            .map_err(|_| CipherError::Authentication)?;
        Ok(parsed.kind)
    }

    /// Decrypts a `Value::Str` holding an `ENC[...]` string in place, as
    /// [`ValueCipher::decrypt`] would: a UTF-8 `str` plaintext is written
    /// into the string's own buffer (no allocation), through a per-thread
    /// scratch buffer that is wiped after each use. With `fit`, it is put
    /// in a new block of its own size instead and the string's block is
    /// freed, for a caller that wants the ciphertext's memory back.
    pub(crate) fn decrypt_in_place(
        &self,
        value: &mut Value,
        aad: &str,
        fit: bool,
    ) -> Result<(), CipherError> {
        use std::cell::RefCell;
        use zeroize::Zeroize;
        thread_local! {
            static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        let Value::Str(text) = value else {
            return Err(CipherError::NotEncrypted);
        };
        if text.is_empty() {
            return Ok(());
        }
        let replaced = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let other = match self.open_into(text, aad, &mut scratch) {
                Ok("str") => None,
                Ok(kind) => Some(kind.to_string()),
                Err(e) => {
                    scratch.as_mut_slice().zeroize();
                    return Err(e);
                }
            };
            let result = match (other, std::str::from_utf8(&scratch)) {
                (None, Ok(plain)) if fit => {
                    *text = plain.to_string();
                    Ok(None)
                }
                (None, Ok(plain)) => {
                    text.clear();
                    text.push_str(plain);
                    Ok(None)
                }
                (other, _) => {
                    let kind = other.unwrap_or_else(|| "str".to_string());
                    typed_value(&kind, Zeroizing::new(scratch.to_vec())).map(Some)
                }
            };
            scratch.as_mut_slice().zeroize();
            result
        })?;
        if let Some(replaced) = replaced {
            *value = replaced;
        }
        Ok(())
    }
}

impl ValueCipher {
    /// Encrypts one value under `aad` with a fresh random 32-byte nonce, in
    /// the reference's `ENC[...]` layout and with its plaintext forms (aes
    /// `Cipher.Encrypt`): ints in decimal, floats as Go's
    /// `FormatFloat(f, 'f', -1, 64)`, booleans `True`/`False`, times as
    /// RFC 3339. An empty string or comment stays empty. Non-UTF-8 bytes are
    /// a Go string to the reference, so they are stored as `str` too.
    /// Maps, lists and nulls are not values.
    pub fn encrypt(&self, value: &Value, aad: &str) -> Result<String, CipherError> {
        self.encrypt_stashed(value, aad, None)
    }

    /// Encrypts like [`ValueCipher::encrypt`], but returns the `ENC[...]`
    /// string the file held when `stash` saw this very plaintext, type and
    /// path decrypted: an untouched value keeps its ciphertext byte for
    /// byte, a changed one gets a fresh IV.
    pub fn encrypt_stashed(
        &self,
        value: &Value,
        aad: &str,
        stash: Option<&mut Stash>,
    ) -> Result<String, CipherError> {
        plain_form(value, |plain, kind| self.seal(plain, kind, aad, stash))
    }

    /// The digest under which a [`Stash`] remembers `value` at `aad`, or
    /// `None` for an empty string or comment, which is never encrypted.
    pub(crate) fn stash_digest(
        &self,
        value: &Value,
        aad: &str,
    ) -> Result<Option<StashDigest>, CipherError> {
        plain_form(value, |plain, kind| {
            Ok((!plain.is_empty() || !matches!(kind, "str" | "comment"))
                .then(|| self.stash_digest_of(aad, kind, plain)))
        })
    }

    /// Encrypts a comment's text (`type:comment`); an empty one stays empty.
    /// With a `stash`, an untouched comment keeps its ciphertext.
    pub fn encrypt_comment(
        &self,
        text: &str,
        aad: &str,
        stash: Option<&mut Stash>,
    ) -> Result<String, CipherError> {
        self.seal(text.as_bytes(), "comment", aad, stash)
    }

    fn seal(
        &self,
        plain: &[u8],
        kind: &str,
        aad: &str,
        stash: Option<&mut Stash>,
    ) -> Result<String, CipherError> {
        // The reference's `isEmpty`: empty strings and comments are not encrypted.
        if plain.is_empty() && matches!(kind, "str" | "comment") {
            return Ok(String::new());
        }
        if let Some(sealed) =
            stash.and_then(|stash| stash.take_digest(&self.stash_digest_of(aad, kind, plain)))
        {
            return Ok(sealed);
        }
        let nonce = fresh_nonce()?;
        // Encrypted in a buffer of the thread's, reused from value to value:
        // once encrypted in place it holds only ciphertext, so it is cleared
        // (not wiped) for the next one.
        thread_local! {
            static SEALING: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SEALING.with(|buffer| {
            let data = &mut *buffer.borrow_mut();
            data.clear();
            data.extend_from_slice(plain);
            let sealed = self
                .aead
                .encrypt_in_place_detached((&nonce).into(), aad.as_bytes(), data);
            let Ok(tag) = sealed else {
                zeroize::Zeroize::zeroize(data);
                return Err(CipherError::Authentication);
            };
            // One buffer of the exact size for the whole `ENC[...]` string.
            let encoded = |n: usize| n.div_ceil(3) * 4;
            let mut out = Vec::with_capacity(
                "ENC[AES256_GCM,data:,iv:,tag:,type:]".len()
                    + encoded(data.len())
                    + encoded(nonce.len())
                    + encoded(tag.len())
                    + kind.len(),
            );
            out.extend_from_slice(b"ENC[AES256_GCM,data:");
            push_base64(&mut out, data);
            out.extend_from_slice(b",iv:");
            push_base64(&mut out, &nonce);
            out.extend_from_slice(b",tag:");
            push_base64(&mut out, &tag);
            out.extend_from_slice(b",type:");
            out.extend_from_slice(kind.as_bytes());
            out.push(b']');
            String::from_utf8(out).map_err(|_| CipherError::Authentication)
        })
    }
}

/// Appends the standard base64 form of `bytes` to `out`.
fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = STANDARD.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
}

/// Calls `f` with a value's plaintext form and `type:` tag, as the
/// reference's aes `Cipher.Encrypt` writes them.
fn plain_form<R>(
    value: &Value,
    f: impl FnOnce(&[u8], &'static str) -> Result<R, CipherError>,
) -> Result<R, CipherError> {
    let text;
    let (plain, kind): (&[u8], &'static str) = match value {
        Value::Str(s) => (s.as_bytes(), "str"),
        Value::Bytes(b) => (b, "str"),
        Value::Int(i) => {
            text = Zeroizing::new(i.to_string());
            (text.as_bytes(), "int")
        }
        Value::Float(f) => {
            text = Zeroizing::new(crate::gofmt::format_float(
                *f,
                crate::gofmt::FloatFormat::Decimal,
            ));
            (text.as_bytes(), "float")
        }
        Value::Bool(true) => (b"True", "bool"),
        Value::Bool(false) => (b"False", "bool"),
        Value::Time(t) => (t.as_bytes(), "time"),
        Value::Comment(c) => (c.text.as_bytes(), "comment"),
        Value::Map(_) | Value::List(_) | Value::Null => {
            return Err(CipherError::UnknownType("non-scalar".into()))
        }
    };
    f(plain, kind)
}

/// The key of a cipher's [`StashDigest`]s: derived from the data key
/// (SHA-256 under a label of rsops' own, which nothing else hashes), so a
/// stash is only ever matched by a cipher of the key it was made under,
/// and needs no randomness of its own.
fn stash_digest_key(data_key: &DataKey) -> Zeroizing<[u8; 16]> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"rsops stash digest key\0");
    hasher.update(data_key.expose());
    let digest = Zeroizing::new(<[u8; 32]>::from(hasher.finalize()));
    let mut key = Zeroizing::new([0u8; 16]);
    key.copy_from_slice(&digest[..16]);
    key
}

/// Nonces made this many at a time by a thread's nonce generator.
const NONCES_PER_BATCH: usize = 128;

/// A fresh random 32-byte nonce, as the reference draws one per value.
///
/// Each thread draws its nonces from a ChaCha12 generator seeded from the
/// operating system's random source when the thread first needs one: the
/// kernel's generator costs a large file about a twentieth of its
/// encryption, ChaCha in user space a fraction of that. A nonce needs to be
/// unpredictable and never repeat under one key, not secret: it is
/// written next to the ciphertext. (A process that forked would repeat
/// its parent's nonces; rsops forks only to run a program at once.) Data
/// keys are drawn from the operating system directly (see
/// [`crate::encrypt::generate_data_key`]).
fn fresh_nonce() -> Result<[u8; 32], CipherError> {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha12Rng;
    use std::cell::RefCell;
    struct Nonces {
        generator: Option<ChaCha12Rng>,
        batch: [u8; 32 * NONCES_PER_BATCH],
        used: usize,
    }
    thread_local! {
        static NONCES: RefCell<Nonces> = const {
            RefCell::new(Nonces {
                generator: None,
                batch: [0; 32 * NONCES_PER_BATCH],
                used: 32 * NONCES_PER_BATCH,
            })
        };
    }
    NONCES.with(|nonces| {
        let nonces = &mut *nonces.borrow_mut();
        if nonces.used == nonces.batch.len() {
            let generator = match &mut nonces.generator {
                Some(generator) => generator,
                None => {
                    let mut seed = [0u8; 32];
                    getrandom::fill(&mut seed).map_err(|_| CipherError::Random)?;
                    nonces.generator.insert(ChaCha12Rng::from_seed(seed))
                }
            };
            generator.fill_bytes(&mut nonces.batch);
            nonces.used = 0;
        }
        let mut nonce = [0u8; 32];
        nonce.copy_from_slice(&nonces.batch[nonces.used..nonces.used + 32]);
        nonces.used += 32;
        Ok(nonce)
    })
}

/// Turns decrypted bytes into the native value named by the `type:` tag,
/// accepting what Go's `strconv` accepts.
pub(crate) fn typed_value(kind: &str, mut plain: Zeroizing<Vec<u8>>) -> Result<Value, CipherError> {
    // The plaintext buffer moves into the value (which the tree wipes) where
    // it can; whatever is left behind is wiped when `plain` drops.
    let utf8 = std::str::from_utf8(&plain).is_ok();
    let take_string = |plain: &mut Zeroizing<Vec<u8>>| {
        String::from_utf8(std::mem::take(&mut **plain)).unwrap_or_default()
    };
    match (kind, utf8) {
        ("bytes", _) => return Ok(Value::Bytes(std::mem::take(&mut *plain))),
        // Go strings may hold any bytes (binary files are stored as `str`).
        ("str", false) => return Ok(Value::Bytes(std::mem::take(&mut *plain))),
        ("str", true) => return Ok(Value::Str(take_string(&mut plain))),
        (_, false) => return Err(CipherError::BadPlaintext("utf-8 string")),
        _ => {}
    }
    let text = std::str::from_utf8(&plain).unwrap_or_default();
    Ok(match kind {
        "int" => Value::Int(parse_go_int(text).ok_or(CipherError::BadPlaintext("int"))?),
        "float" => Value::Float(parse_go_float(text).ok_or(CipherError::BadPlaintext("float"))?),
        "bool" => Value::Bool(parse_go_bool(text).ok_or(CipherError::BadPlaintext("bool"))?),
        "time" => {
            if !crate::timefmt::is_rfc3339(text) {
                return Err(CipherError::BadPlaintext("time"));
            }
            Value::Time(take_string(&mut plain))
        }
        "comment" => Value::Comment(Comment::new(take_string(&mut plain))),
        other => return Err(CipherError::UnknownType(other.to_string())),
    })
}

/// Go's `strconv.Atoi`: optional sign, decimal digits, 64-bit range.
fn parse_go_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Go's `strconv.ParseFloat(s, 64)` for the forms sops writes (and the
/// special values it accepts).
fn parse_go_float(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    match unsigned {
        "inf" | "infinity" | "nan" => return lower.parse().ok(),
        _ => {}
    }
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    text.parse().ok()
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key(byte: u8) -> DataKey {
        DataKey::from_slice(&[byte; 32]).unwrap()
    }

    /// Untouched values come back byte for byte; a changed value, another
    /// path or another type is sealed anew; equal items keep their own.
    #[test]
    fn stash_gives_back_untouched_ciphertext() {
        let cipher = ValueCipher::new(&test_key(3));
        let first = cipher.encrypt(&Value::Str("same".into()), "l:").unwrap();
        let second = cipher.encrypt(&Value::Str("same".into()), "l:").unwrap();
        let number = cipher.encrypt(&Value::Int(7), "n:").unwrap();
        let mut stash = Stash::default();
        for (sealed, aad) in [(&first, "l:"), (&second, "l:"), (&number, "n:")] {
            cipher.decrypt_stashing(sealed, aad, &mut stash).unwrap();
        }
        let again = |value: &Value, aad: &str, stash: &mut Stash| {
            cipher.encrypt_stashed(value, aad, Some(stash)).unwrap()
        };
        assert_ne!(again(&Value::Int(7), "m:", &mut stash), number);
        assert_ne!(again(&Value::Str("7".into()), "n:", &mut stash), number);
        assert_ne!(again(&Value::Int(8), "n:", &mut stash), number);
        assert_eq!(again(&Value::Int(7), "n:", &mut stash), number);
        assert_eq!(again(&Value::Str("same".into()), "l:", &mut stash), first);
        assert_eq!(again(&Value::Str("same".into()), "l:", &mut stash), second);
        let third = again(&Value::Str("same".into()), "l:", &mut stash);
        assert!(third != first && third != second);

        // In order, out of order, and in order again once indexed.
        let sealed: Vec<String> = (0..4)
            .map(|i| cipher.encrypt(&Value::Int(i), "k:").unwrap())
            .collect();
        let mut stash = Stash::default();
        for s in &sealed {
            cipher.decrypt_stashing(s, "k:", &mut stash).unwrap();
        }
        for i in [0, 2, 3, 1] {
            assert_eq!(again(&Value::Int(i), "k:", &mut stash), sealed[i as usize]);
        }
        assert_ne!(again(&Value::Int(0), "k:", &mut stash), sealed[0]);
    }

    /// A stash's digests are keyed by the data key: the same value at the
    /// same path under another key is another digest, and is never matched.
    #[test]
    fn stash_digests_are_keyed_by_the_data_key() {
        let cipher = ValueCipher::new(&test_key(3));
        let other = ValueCipher::new(&test_key(4));
        let digest = |cipher: &ValueCipher| cipher.stash_digest_of("a:", "str", b"same");
        assert_eq!(digest(&cipher), digest(&ValueCipher::new(&test_key(3))));
        assert_ne!(digest(&cipher), digest(&other));
        assert_ne!(
            digest(&cipher),
            cipher.stash_digest_of("a:", "str", b"samf")
        );
        assert_ne!(
            cipher.stash_digest_of("a:", "strs", b"ame"),
            cipher.stash_digest_of("a:", "str", b"same")
        );
        let sealed = cipher.encrypt(&Value::Str("same".into()), "a:").unwrap();
        let mut stash = Stash::default();
        cipher.decrypt_stashing(&sealed, "a:", &mut stash).unwrap();
        let value = Value::Str("same".into());
        let under_other = other.encrypt_stashed(&value, "a:", Some(&mut stash));
        assert_ne!(under_other.unwrap(), sealed);
        assert_eq!(
            cipher
                .encrypt_stashed(&value, "a:", Some(&mut stash))
                .unwrap(),
            sealed
        );
    }

    /// Lookups out of order are answered by scans, then by the index, and
    /// both give the first untaken string of equal values, in order.
    #[test]
    fn stash_scans_and_index_agree() {
        let cipher = ValueCipher::new(&test_key(5));
        let values: Vec<i64> = (0..40).map(|i| i % 10).collect();
        let sealed: Vec<String> = values
            .iter()
            .map(|&v| cipher.encrypt(&Value::Int(v), "k:").unwrap())
            .collect();
        let mut stash = Stash::default();
        for s in &sealed {
            cipher.decrypt_stashing(s, "k:", &mut stash).unwrap();
        }
        let mut taken = [false; 40];
        for &v in values.iter().rev() {
            let got = cipher
                .encrypt_stashed(&Value::Int(v), "k:", Some(&mut stash))
                .unwrap();
            let want = (0..40).find(|&i| !taken[i] && values[i] == v).unwrap();
            taken[want] = true;
            assert_eq!(got, sealed[want], "value {v}");
        }
        assert!(stash.index.is_some());
    }

    /// A value the reference encrypted with key 32×`f` under AAD `bar:`
    /// (from sops' own `aes/cipher_test.go`).
    #[test]
    fn decrypts_reference_known_answer() {
        let cipher = ValueCipher::new(&test_key(b'f'));
        let value = "ENC[AES256_GCM,data:oYyi,iv:MyIDYbT718JRr11QtBkcj3Dwm4k1aCGZBVeZf0EyV8o=,tag:t5z2Z023Up0kxwCgw1gNxg==,type:str]";
        assert_eq!(
            cipher.decrypt(value, "bar:").unwrap(),
            Value::Str("foo".into())
        );
        assert_eq!(
            cipher.decrypt(value, "baz:"),
            Err(CipherError::Authentication)
        );
    }

    #[test]
    fn encrypt_round_trips_every_type() {
        let cipher = ValueCipher::new(&test_key(7));
        for value in [
            Value::Str("héllo".into()),
            Value::Int(-5),
            Value::Float(3.25),
            Value::Bool(false),
            Value::Time("2024-01-02T03:04:05Z".into()),
            Value::Bytes(vec![0, 255]),
            Value::Comment(Comment::new(" note")),
        ] {
            let enc = cipher.encrypt(&value, "a:b:").unwrap();
            assert_eq!(cipher.decrypt(&enc, "a:b:").unwrap(), value);
        }
    }

    /// Decrypting in place gives what decrypting into a new value gives,
    /// for every type, non-UTF-8 strings and failures included.
    #[test]
    fn decrypt_in_place_matches_decrypt() {
        let cipher = ValueCipher::new(&test_key(9));
        let mut sealed: Vec<String> = [
            Value::Str("héllo wörld".into()),
            Value::Str(String::new()),
            Value::Int(-5),
            Value::Float(3.25),
            Value::Bool(true),
            Value::Time("2024-01-02T03:04:05Z".into()),
            Value::Bytes(vec![0, 255]),
            Value::Comment(Comment::new(" note")),
        ]
        .iter()
        .map(|v| cipher.encrypt(v, "a:").unwrap())
        .collect();
        sealed.push("not encrypted".into());
        for text in sealed {
            for aad in ["a:", "b:"] {
                for fit in [false, true] {
                    let mut value = Value::Str(text.clone());
                    let got = cipher
                        .decrypt_in_place(&mut value, aad, fit)
                        .map(|()| value);
                    assert_eq!(got, cipher.decrypt(&text, aad), "{aad}");
                }
            }
        }
    }

    #[test]
    fn rejects_malformed_values() {
        let cipher = ValueCipher::new(&test_key(0));
        assert_eq!(
            cipher.decrypt("hello", "a:"),
            Err(CipherError::NotEncrypted)
        );
        assert_eq!(
            cipher.decrypt("ENC[AES256_GCM,data:!!,iv:AA==,tag:AA==,type:str]", "a:"),
            Err(CipherError::BadBase64("data"))
        );
        assert_eq!(
            cipher.decrypt("ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]", "a:"),
            Err(CipherError::BadLength("iv"))
        );
        assert_eq!(cipher.decrypt("", "a:"), Ok(Value::Str(String::new())));
    }

    /// Go's `base64.StdEncoding` ignores the unused low bits of the last
    /// character and skips line breaks; the reference decrypts such values.
    #[test]
    fn base64_is_decoded_as_go_does() {
        let cipher = ValueCipher::new(&test_key(b'f'));
        let decrypt = |iv: &str, tag: &str| {
            cipher.decrypt(
                &format!("ENC[AES256_GCM,data:oYyi,iv:{iv},tag:{tag},type:str]"),
                "bar:",
            )
        };
        let iv = "MyIDYbT718JRr11QtBkcj3Dwm4k1aCGZBVeZf0EyV8o=";
        let tag = "t5z2Z023Up0kxwCgw1gNxg==";
        let foo = Ok(Value::Str("foo".into()));
        // Non-zero padding bits: `o`→`r` (2 bits), `g`→`v` (4 bits).
        let loose_iv = iv.replace("8o=", "8r=");
        let loose_tag = tag.replace("Nxg==", "Nxv==");
        assert_eq!(decrypt(&loose_iv, &loose_tag), foo);
        assert_eq!(decrypt(&iv.replace("BVeZ", "BV\reZ"), tag), foo);
        // Still refused: missing or extra padding, a foreign character.
        assert_eq!(
            decrypt(iv.trim_end_matches('='), tag),
            Err(CipherError::BadBase64("iv"))
        );
        assert_eq!(
            decrypt(iv, "t5z2Z023Up0kxwCgw1gNxg="),
            Err(CipherError::BadBase64("tag"))
        );
        assert_eq!(
            decrypt(iv, "t5z2Z023Up0kxwCgw1gNxg==="),
            Err(CipherError::BadBase64("tag"))
        );
        assert_eq!(
            decrypt(&iv.replace('M', "-"), tag),
            Err(CipherError::BadBase64("iv"))
        );
        // A line break does not match the reference's pattern at all.
        assert_eq!(
            decrypt(&iv.replace("BVeZ", "BV\neZ"), tag),
            Err(CipherError::NotEncrypted)
        );
    }

    #[test]
    fn go_number_parsing() {
        assert_eq!(parse_go_int("-42"), Some(-42));
        assert_eq!(parse_go_int("4_2"), None);
        assert_eq!(parse_go_int("9223372036854775808"), None);
        assert_eq!(parse_go_float("1e21"), Some(1e21));
        assert_eq!(parse_go_float("Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("e5"), None);
        assert_eq!(parse_go_bool("True"), Some(true));
        assert_eq!(parse_go_bool("yes"), None);
    }
}
