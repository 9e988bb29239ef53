//! A change at one path of a large YAML file, made piece by piece (`set`,
//! `unset`): what [`InPlace`](super::InPlace) does to the whole file, done
//! to [`PlainPieces`] on every core, so the file's tree is never whole in
//! memory and each piece stays in one core's cache from loading to
//! printing.
//!
//! Every piece is loaded, its values opened aside (the MAC of the file as
//! it is needs them), changed if it holds the path's first key, resealed
//! and printed; the calling thread hashes both MACs in order: the file's
//! as it was, to check, and as it will be, which differs from the first
//! only from the changed piece on. Each piece is written out as soon as it
//! and every one before it are printed, so the output is not held whole
//! either. The last piece holds the metadata (read first, for the data
//! key), takes a new key the path adds, and is printed last with the new
//! MAC.

use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::InPlace;
use crate::cipher::ValueCipher;
use crate::decrypt::{DecryptError, DecryptOptions};
use crate::extract::Step;
use crate::formats::{EmitOptions, Format, PlainPieces};
use crate::keys::KeyRegistry;
use crate::metadata::{self, Metadata};
use crate::timefmt::Timestamp;
use crate::tree::{Document, Value};

/// A change at one path of a file's first document.
#[derive(Clone, Copy)]
pub enum PathEdit<'a> {
    /// Set the value at the path (see [`crate::update::set`]).
    Set(&'a [Step], &'a Value),
    /// Remove what is at the path (see [`crate::update::unset`]).
    Unset(&'a [Step]),
}

impl PathEdit<'_> {
    fn path(&self) -> &[Step] {
        match self {
            PathEdit::Set(path, _) | PathEdit::Unset(path) => path,
        }
    }

    /// Makes the change in `root`, moving what it replaces to `retired`.
    fn make(
        &self,
        root: &mut crate::tree::Map,
        retired: &mut Vec<Value>,
    ) -> Result<(), crate::update::UpdateError> {
        match self {
            PathEdit::Set(path, value) => {
                crate::update::set_retiring(root, path, (*value).clone(), retired).map(|_| ())
            }
            PathEdit::Unset(path) => crate::update::unset_retiring(root, path, retired),
        }
    }
}

/// Why a change in pieces failed.
#[derive(Debug, thiserror::Error)]
pub enum PiecesError {
    /// The data key could not be unwrapped.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// The changed file could not be written out.
    #[error(transparent)]
    Write(std::io::Error),
}

/// Makes `edit` to a large YAML file in pieces and writes it to `out`
/// (as YAML), as opening it with [`InPlace::open`], changing, sealing and
/// printing it would. `None` when the file has to be changed whole (or is
/// not YAML, `format`), which then reports
/// what went wrong as it always does (what was written to `out` is to be
/// thrown away): the file is small or not cut into pieces that load
/// alone, its metadata is not in its last piece, its rule reads comments,
/// a value does not open or seal, the path is not there to unset or does
/// not fit, or the MAC does not match. Only a data key that cannot be
/// unwrapped is reported from here, once every piece is known to load, so
/// that a file that does not load reports that instead, as the whole
/// reading does; and a failure to write, once all else is known good.
pub async fn change_in_pieces(
    input: &[u8],
    format: Format,
    registry: &KeyRegistry,
    options: &DecryptOptions,
    edit: PathEdit<'_>,
    emit: EmitOptions,
    out: &mut dyn std::io::Write,
) -> Option<Result<(), PiecesError>> {
    let Some(Step::Key(first)) = edit.path().first().filter(|_| format == Format::Yaml) else {
        return None;
    };
    let pieces = PlainPieces::cut(input)?;
    let last = pieces.count() - 1;
    let mut tail = pieces.load(last)?;
    let mut metadata = metadata::extract(&mut tail, Format::Yaml.metadata_layout()).ok()?;
    if !InPlace::supports(&metadata) {
        return None;
    }
    let (key, _attempts) = match crate::keys::data_key(&metadata, registry, &options.unwrap).await {
        Ok(found) => found,
        Err(e) => return all_load(&pieces).then(|| Err(DecryptError::from(e).into())),
    };
    let cipher = ValueCipher::new(&key);
    let mut macs = Macs::new(&metadata);
    let mut keys = foldhash::HashSet::default();
    let mut whole = true;
    let mut unwritten = None;
    let change = |index: usize| {
        let mut piece = pieces.load(index)?;
        let piece_keys: Vec<String> = PlainPieces::keys(&piece).map(str::to_string).collect();
        let holds_path = piece_keys.iter().any(|key| key == first);
        let edit = holds_path.then_some(edit);
        let mac = reseal_piece(&mut piece, &metadata, &cipher, edit)?;
        let printed = PlainPieces::print(&piece, emit).ok()?;
        drop(piece.into_sealed_branches());
        Some((piece_keys, mac, printed))
    };
    crate::par::in_order(last, change, |piece| {
        let Some((piece_keys, mac, printed)) = piece else {
            whole = false;
            return;
        };
        whole &= piece_keys.into_iter().all(|key| keys.insert(key));
        whole &= macs.hash(mac);
        if unwritten.is_none() {
            unwritten = out.write_all(&printed).err();
        }
    });
    if !whole {
        return None;
    }
    let tail_keys: Vec<&str> = PlainPieces::keys(&tail).collect();
    if tail_keys.iter().any(|key| keys.contains(*key)) {
        return None;
    }
    // A key no piece holds is added at the end of the root, which the
    // last piece ends; only `set` adds one.
    let tail_edit = match edit {
        _ if tail_keys.contains(&first.as_str()) => Some(edit),
        PathEdit::Set(..) if macs.new.is_none() => Some(edit),
        _ => None,
    };
    let mac = reseal_piece(&mut tail, &metadata, &cipher, tail_edit)?;
    if !macs.hash(mac) {
        return None;
    }
    let (was, will_be) = macs.finish()?;
    if !options.ignore_mac && crate::decrypt::verify_mac(&metadata, &cipher, &was).is_err() {
        return None;
    }
    metadata.last_modified = Timestamp::now().rfc3339();
    let printed =
        crate::encrypt::print_last_piece(&mut tail, &mut metadata, &cipher, will_be, emit).ok()?;
    let written = match unwritten {
        Some(e) => Err(e),
        None => out.write_all(&printed),
    };
    Some(written.map_err(PiecesError::Write))
}

/// What the MAC covers of a piece: as it was, and, for the piece that
/// changed, as it is now.
struct PieceMac {
    was: Zeroizing<Vec<u8>>,
    changed: Option<Zeroizing<Vec<u8>>>,
}

/// Opens a piece's values aside, makes `edit` in it if given, and reseals
/// it (see [`crate::walk::reseal_in_place`]), unless it is left unchanged
/// and resealing would change nothing in it. `None` when a value does not
/// open or seal, or the path does not fit.
fn reseal_piece(
    piece: &mut Document,
    metadata: &Metadata,
    cipher: &ValueCipher,
    edit: Option<PathEdit<'_>>,
) -> Option<PieceMac> {
    crate::encrypt::comments_on_own_lines(piece);
    let (was, opening) = crate::walk::open_piece_in_place(piece, metadata, cipher).ok()?;
    if edit.is_none() && opening.is_settled() {
        return Some(PieceMac { was, changed: None });
    }
    let mut retired = Vec::new();
    if let Some(edit) = edit {
        edit.make(&mut piece.branches[0], &mut retired).ok()?;
    }
    let mac = crate::walk::reseal_in_place(piece, metadata, cipher, &opening, &retired).ok()?;
    let changed = edit.is_some().then(|| mac.into_bytes());
    Some(PieceMac { was, changed })
}

/// The file's MAC as it was and as it will be, hashed piece by piece in
/// order.
struct Macs {
    was: Sha512,
    /// From the piece that changed on.
    new: Option<Sha512>,
}

impl Macs {
    fn new(metadata: &Metadata) -> Macs {
        Macs {
            was: crate::walk::mac_hasher(metadata),
            new: None,
        }
    }

    /// Hashes the next piece; `false` if a second piece changed, which one
    /// path cannot do.
    fn hash(&mut self, mac: PieceMac) -> bool {
        match (&mut self.new, mac.changed) {
            (Some(_), Some(_)) => return false,
            (None, Some(changed)) => {
                let mut new = self.was.clone();
                new.update(changed.as_slice());
                self.new = Some(new);
            }
            (Some(new), None) => new.update(mac.was.as_slice()),
            (None, None) => {}
        }
        self.was.update(mac.was.as_slice());
        true
    }

    /// Both MACs, upper-case hex; `None` if no piece changed.
    fn finish(self) -> Option<(Zeroizing<String>, String)> {
        let new = self.new?;
        Some((
            Zeroizing::new(crate::walk::hex_upper(&self.was.finalize())),
            crate::walk::hex_upper(&new.finalize()),
        ))
    }
}

/// Whether every piece loads and no two share a key (each is dropped once
/// loaded).
fn all_load(pieces: &PlainPieces<'_>) -> bool {
    let mut keys = foldhash::HashSet::default();
    let mut all = true;
    crate::par::in_order(
        pieces.count(),
        |index| {
            pieces.load(index).map(|piece| {
                PlainPieces::keys(&piece)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
        },
        |loaded| match loaded {
            Some(piece_keys) => all &= piece_keys.into_iter().all(|key| keys.insert(key)),
            None => all = false,
        },
    );
    all
}
