//! Reading and decrypting the input file: shared by every command.

use std::io::Read;
use std::path::{Path, PathBuf};

use rsops::formats::{EmitOptions, Format, Printed};
use rsops::metadata::Metadata;
use rsops::rewrite::{change_in_pieces, Opened, PathChange, PathEdit, PiecesError, Rekeyed};
use rsops::{DecryptOptions, Decrypted, KeyCheck, KeyRegistry, UnwrapOptions};
use rsops_keysource::KeyEntry;
use zeroize::Zeroizing;

use super::{AtomicWrite, Failure};
use crate::cli::{Cli, InputArgs, KeyArgs};

/// Where the encrypted bytes come from and how to read and print them.
pub struct Input {
    /// The file, or `None` for standard input.
    pub path: Option<PathBuf>,
    /// The input format.
    pub input_format: Format,
    /// The output format.
    pub output_format: Format,
    /// Printing options.
    pub emit: EmitOptions,
    /// Report key attempts on standard error.
    pub verbose: bool,
}

/// A file opened for a change at one path (see
/// [`Input::open_for_path_change`]).
pub enum ChangeAtPath {
    /// Changed and written out already.
    Made,
    /// Opened, for the change to be made and sealed.
    ToMake(Box<PathChange>),
}

fn format_named(name: &str, flag: &str) -> Result<Format, Failure> {
    Format::from_name(name).ok_or_else(|| Failure::Usage {
        message: format!("unknown {flag} `{name}`"),
        hint: Some("use one of yaml, json, dotenv, ini, binary"),
    })
}

impl Input {
    /// The input `file`, of the types `args` name (`--input-type`,
    /// `--output-type`).
    pub fn of_file(cli: &Cli, file: &Path, args: &InputArgs) -> Result<Input, Failure> {
        Input::new(
            cli,
            Some(file),
            None,
            args.input_type.as_deref(),
            args.output_type.as_deref(),
        )
    }

    /// Validates the format flags before any I/O.
    pub fn new(
        cli: &Cli,
        file: Option<&Path>,
        name_override: Option<&Path>,
        input_type: Option<&str>,
        output_type: Option<&str>,
    ) -> Result<Input, Failure> {
        let path = file.filter(|p| p.as_os_str() != "-").map(Path::to_path_buf);
        let name = name_override.or(path.as_deref());
        let by_name = name.map_or(Format::Binary, Format::from_path);
        let input_format = match input_type {
            Some(t) => format_named(t, "--input-type")?,
            None => by_name,
        };
        // Without a file name the reference would print binary, which fails
        // for any structured input; printing in the input's format is what
        // `rsops decrypt --input-type yaml < file` users mean.
        let output_format = match (output_type, name) {
            (Some(t), _) => format_named(t, "--output-type")?,
            (None, Some(_)) => by_name,
            (None, None) => input_format,
        };
        let indent = match cli.indent {
            Some(indent) => Some(indent),
            None => super::config::store_indent(cli.config.as_deref(), output_format)?,
        };
        Ok(Input {
            path,
            input_format,
            output_format,
            emit: EmitOptions { indent },
            verbose: cli.verbose(),
        })
    }

    /// How the input is named in messages.
    pub fn display(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "standard input".to_string(), |p| p.display().to_string())
    }

    /// The input's bytes (wiped when dropped).
    pub fn read(&self) -> Result<Zeroizing<Vec<u8>>, Failure> {
        match self.open()? {
            Some(file) => self.read_file(&file, file_len(&file)),
            None => {
                let mut bytes = Zeroizing::new(Vec::new());
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .map_err(|source| Failure::Read {
                        what: "standard input".into(),
                        source,
                    })?;
                Ok(bytes)
            }
        }
    }

    /// The input file's bytes (wiped when dropped) and its state as they
    /// were read, to tell later whether it changed since (see
    /// [`Input::unchanged_under_lock`]).
    pub fn read_noting_state(&self) -> Result<(Zeroizing<Vec<u8>>, FileState), Failure> {
        let path = self.file_to_change()?;
        let started = coarse_now();
        let file = self.open_path(path)?;
        let metadata = file.metadata().map_err(|e| self.read_failure(e))?;
        let bytes = self.read_file(&file, regular_len(&metadata))?;
        Ok((bytes, FileState::new(&metadata, started)))
    }

    /// Asks the kernel, on another thread, to drop the input file's clean
    /// pages from its cache, if `state` (from [`Input::read_noting_state`])
    /// says [`Input::unchanged_under_lock`] will not read it again. `edit`
    /// does while the editor runs: when the new file replaces this one, the
    /// kernel frees whatever of it is still cached, which takes
    /// milliseconds for a large file on the way out. Linux only.
    pub fn uncache_in_background(&self, state: &FileState) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let (Some(path), true) = (
            self.path.clone(),
            state.settled && state.len >= UNCACHE_FROM,
        ) {
            let _ = std::thread::Builder::new().spawn(move || {
                use std::os::fd::AsRawFd;
                if let Ok(file) = std::fs::File::open(path) {
                    // SAFETY: advice on a descriptor this thread owns; the
                    // kernel only drops clean cached pages.
                    unsafe {
                        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED)
                    };
                }
            });
        }
    }

    /// Takes the input file's lock (held until the returned file is
    /// dropped) and tells whether it still holds `before`, read when its
    /// state was `state`. A file last changed before it was read whose
    /// state is the same was not written since (every write moves its
    /// change time past the moment it was read); any other is read again
    /// and compared.
    pub fn unchanged_under_lock(
        &self,
        state: &FileState,
        before: &[u8],
    ) -> Result<(bool, std::fs::File), Failure> {
        let (lock, now) = self.lock()?;
        if state.settled && state.same(&now) {
            return Ok((true, lock));
        }
        let bytes = self.read_file(&lock, now.len())?;
        Ok((*bytes == *before, lock))
    }

    /// The input file, opened; `None` for standard input.
    fn open(&self) -> Result<Option<std::fs::File>, Failure> {
        self.path
            .as_ref()
            .map(|path| self.open_path(path))
            .transpose()
    }

    /// The input file at `path` (the input's own), opened.
    fn open_path(&self, path: &std::path::Path) -> Result<std::fs::File, Failure> {
        std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Failure::NotFound(path.to_path_buf()),
            _ => self.read_failure(e),
        })
    }

    /// The whole of the opened input file, `len` bytes as last seen (wiped
    /// when dropped).
    fn read_file(&self, file: &std::fs::File, len: u64) -> Result<Zeroizing<Vec<u8>>, Failure> {
        read_whole(file, len).map_err(|e| self.read_failure(e))
    }

    fn read_failure(&self, source: std::io::Error) -> Failure {
        Failure::Read {
            what: self.display(),
            source,
        }
    }

    /// Reads the input file under an exclusive `flock`, held until the
    /// returned file is dropped: commands that rewrite the file (`set`,
    /// `unset`, …) hold it across read, change and rename, so two of them
    /// on one file run one after the other instead of losing an update.
    /// The file is renamed over when written, so the lock is taken on
    /// whatever the path names once it is held (re-opened if a writer
    /// replaced it meanwhile).
    pub fn read_locked(&self) -> Result<(Zeroizing<Vec<u8>>, std::fs::File), Failure> {
        let (file, held) = self.lock()?;
        let bytes = self.read_file(&file, held.len())?;
        Ok((bytes, file))
    }

    /// The input file, opened and locked (see [`Input::read_locked`]), and
    /// its metadata once locked.
    fn lock(&self) -> Result<(std::fs::File, std::fs::Metadata), Failure> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let path = self.file_to_change()?;
        let read_error = |source| self.read_failure(source);
        loop {
            let file = self.open_path(path)?;
            // SAFETY: flock on a descriptor this function owns.
            while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(read_error(error));
                }
            }
            let held = file.metadata().map_err(read_error)?;
            let named = std::fs::metadata(path).map_err(read_error)?;
            if held.ino() != named.ino() || held.dev() != named.dev() {
                continue;
            }
            return Ok((file, held));
        }
    }

    /// The input file, for a command that changes it in place.
    fn file_to_change(&self) -> Result<&Path, Failure> {
        self.path.as_deref().ok_or_else(|| Failure::Usage {
            message: "this command changes a file in place: give a file, not standard input".into(),
            hint: None,
        })
    }

    /// Reads the input file under its lock and decrypts it for change,
    /// keeping its data key and ciphertexts (see [`Opened`]); the lock is
    /// held until the returned file is dropped.
    pub async fn open_for_change(
        &self,
        args: &InputArgs,
    ) -> Result<(Opened, std::fs::File), Failure> {
        let format = self.input_format;
        self.open_locked(args, async |bytes, options| {
            Opened::open(bytes, format, &KeyRegistry::default(), options)
                .await
                .map_err(|source| self.decrypt_failure(source))
        })
        .await
    }

    /// Reads the input file under its lock for `edit`: a large
    /// YAML file is changed and written to `out` in pieces right away (see
    /// [`change_in_pieces`]), any other opened for the change (see
    /// [`PathChange`]); the lock is held until the returned file is dropped.
    pub async fn open_for_path_change(
        &self,
        args: &InputArgs,
        edit: PathEdit<'_>,
        out: &mut AtomicWrite<'_>,
    ) -> Result<(ChangeAtPath, std::fs::File), Failure> {
        let format = self.input_format;
        let in_pieces = format == Format::Yaml && self.output_format == Format::Yaml;
        let emit = self.emit;
        self.open_locked(args, async |bytes, options| {
            let registry = KeyRegistry::default();
            if in_pieces {
                match change_in_pieces(bytes, format, &registry, options, edit, emit, out).await {
                    Some(Ok(())) => return Ok(ChangeAtPath::Made),
                    Some(Err(PiecesError::Decrypt(source))) => {
                        return Err(self.decrypt_failure(source))
                    }
                    Some(Err(PiecesError::Write(source))) => return Err(out.failure(source)),
                    None => out.discard(),
                }
            }
            PathChange::open(bytes, format, &registry, options)
                .await
                .map(|change| ChangeAtPath::ToMake(Box::new(change)))
                .map_err(|source| self.decrypt_failure(source))
        })
        .await
    }

    /// Reads the input file under its lock and gives it to `open` with the
    /// decryption options of `args`; the file as read is wiped and freed
    /// while the change goes on.
    async fn open_locked<T>(
        &self,
        args: &InputArgs,
        open: impl AsyncFnOnce(&[u8], &DecryptOptions) -> Result<T, Failure>,
    ) -> Result<(T, std::fs::File), Failure> {
        let (bytes, lock) = self.read_locked()?;
        let options = DecryptOptions {
            ignore_mac: args.ignore_mac,
            unwrap: unwrap_options(&args.keys),
        };
        let opened = open(&bytes, &options).await;
        rsops::par::drop_in_background(bytes);
        Ok((opened?, lock))
    }

    /// Changes the key groups of the input file, keeping its data key and
    /// values (`updatekeys`, `groups`): under the file's lock, `change` sees
    /// the current metadata and gives the new groups and Shamir threshold,
    /// or `None` to leave the file alone; then the data key is unwrapped,
    /// wrapped for the new groups, and the file printed in the output
    /// format. Returns it with the lock, held until it is written.
    pub async fn rekey(
        &self,
        keys: &KeyArgs,
        change: impl FnOnce(&Metadata) -> Result<Option<(Vec<Vec<KeyEntry>>, usize)>, Failure>,
    ) -> Result<Option<(Vec<u8>, std::fs::File)>, Failure> {
        let (bytes, lock) = self.read_locked()?;
        let mut rekeyed = Rekeyed::read(&bytes, self.input_format)
            .map_err(|source| self.decrypt_failure(source))?;
        let Some((groups, threshold)) = change(&rekeyed.metadata)? else {
            return Ok(None);
        };
        let registry = KeyRegistry::default();
        let (key, _) = rekeyed
            .data_key(&registry, &unwrap_options(keys))
            .await
            .map_err(|source| self.decrypt_failure(source))?;
        rekeyed
            .set_key_groups(&key, groups, threshold, &registry, keys.key_timeout)
            .await
            .map_err(|source| Failure::Encrypt {
                input: self.display(),
                source: Box::new(source),
            })?;
        let output = rekeyed
            .emit(self.output_format, self.emit)
            .map_err(|source| self.decrypt_failure(source.into()))?;
        Ok(Some((output, lock)))
    }

    /// Encrypts a changed file again in the output format.
    pub fn seal(&self, opened: Opened) -> Result<Printed, Failure> {
        self.sealed(opened.seal(self.output_format, self.emit))
    }

    /// Seals a file changed at one path, as [`Input::seal`] does.
    pub fn seal_path_change(&self, change: PathChange) -> Result<Printed, Failure> {
        self.sealed(change.seal(self.output_format, self.emit))
    }

    fn sealed<T>(&self, sealed: Result<T, rsops::encrypt::EncryptError>) -> Result<T, Failure> {
        sealed.map_err(|source| Failure::Encrypt {
            input: self.display(),
            source: Box::new(source),
        })
    }

    /// Reads and decrypts the input.
    pub async fn decrypt(&self, args: &InputArgs) -> Result<Decrypted, Failure> {
        let options = DecryptOptions {
            ignore_mac: args.ignore_mac,
            unwrap: unwrap_options(&args.keys),
        };
        let registry = KeyRegistry::default();
        let format = self.input_format;
        let file = self.open()?;
        let len = file.as_ref().map_or(0, file_len);
        let in_pieces = match &file {
            Some(file) => self.decrypt_in_pieces(file, len, &registry, &options).await,
            None => None,
        };
        let decrypted = match (in_pieces, file) {
            (Some(decrypted), _) => decrypted,
            (None, Some(file)) => {
                let bytes = self.read_file(&file, len)?;
                drop(file);
                rsops::decrypt_owned(bytes, format, &registry, &options).await
            }
            (None, None) => rsops::decrypt_owned(self.read()?, format, &registry, &options).await,
        }
        .map_err(|source| self.decrypt_failure(source))?;
        if self.verbose {
            for attempt in &decrypted.attempts {
                eprintln!(
                    "rsops: {}: group {}: {attempt}",
                    self.display(),
                    attempt.group + 1
                );
            }
        }
        Ok(decrypted)
    }

    /// A large file decrypted piece by piece, never whole in memory (see
    /// [`rsops::decrypt_pieces`]), or `None` to read it whole.
    async fn decrypt_in_pieces(
        &self,
        file: &std::fs::File,
        len: u64,
        registry: &KeyRegistry,
        options: &DecryptOptions,
    ) -> Option<Result<Decrypted, rsops::DecryptError>> {
        use std::os::unix::fs::FileExt;
        if len < PARALLEL_READ {
            return None;
        }
        let read_at = |at, buf: &mut [u8]| file.read_exact_at(buf, at);
        let pieces = self
            .input_format
            .pieces(usize::try_from(len).ok()?, &read_at)?;
        rsops::decrypt_pieces(&pieces, self.input_format, registry, options).await
    }

    /// Reads the input and tries every key entry, decrypting nothing.
    pub async fn check_keys(&self, args: &KeyArgs) -> Result<KeyCheck, Failure> {
        let bytes = self.read()?;
        let registry = KeyRegistry::default();
        rsops::check_keys(&bytes, self.input_format, &registry, &unwrap_options(args))
            .await
            .map_err(|source| self.decrypt_failure(source))
    }

    fn decrypt_failure(&self, source: rsops::DecryptError) -> Failure {
        Failure::Decrypt {
            input: self.display(),
            source,
        }
    }
}

/// A file's identity, size and times when it was read, and whether it had
/// settled by then: last changed before the clock that stamps changes
/// reached the moment reading began.
pub struct FileState {
    dev: u64,
    ino: u64,
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
    settled: bool,
}

impl FileState {
    fn new(metadata: &std::fs::Metadata, started: Option<(i64, i64)>) -> FileState {
        use std::os::unix::fs::MetadataExt;
        let changed = (metadata.ctime(), metadata.ctime_nsec());
        FileState {
            dev: metadata.dev(),
            ino: metadata.ino(),
            len: metadata.len(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed,
            settled: metadata.is_file() && started.is_some_and(|started| changed < started),
        }
    }

    fn same(&self, now: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        (now.dev(), now.ino(), now.len()) == (self.dev, self.ino, self.len)
            && (now.mtime(), now.mtime_nsec()) == self.modified
            && (now.ctime(), now.ctime_nsec()) == self.changed
    }
}

/// The clock Linux stamps file changes from (the coarse real-time clock,
/// which fine-grained stamps never fall behind), as seconds and
/// nanoseconds; `None` where that is not known.
fn coarse_now() -> Option<(i64, i64)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `clock_gettime` writes one timespec to the pointer given.
        let read = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) };
        (read == 0).then_some((now.tv_sec, now.tv_nsec))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    None
}

/// From this size on, a file about to be replaced is dropped from the
/// kernel's cache ahead (see [`Input::uncache_in_background`]).
const UNCACHE_FROM: u64 = 1 << 20;

/// The size of a regular file, 0 for anything else (read to its end).
fn file_len(file: &std::fs::File) -> u64 {
    file.metadata().map_or(0, |m| regular_len(&m))
}

/// [`file_len`] from metadata already read.
fn regular_len(metadata: &std::fs::Metadata) -> u64 {
    if metadata.is_file() {
        metadata.len()
    } else {
        0
    }
}

/// From this size on, a file is read by every core, a part each.
const PARALLEL_READ: u64 = 4 << 20;

/// Reads a whole file from its start; `len` is its size as last seen. A
/// large file is read in parts at once (the kernel's copying and the
/// faulting-in of fresh pages then use every core), and read again in one
/// go if its size changed meanwhile.
fn read_whole(file: &std::fs::File, len: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::FileExt;
    let threads = rsops::par::threads();
    if len >= PARALLEL_READ && threads > 1 {
        if let Ok(len) = usize::try_from(len) {
            let mut bytes = Zeroizing::new(vec![0u8; len]);
            let part = len.div_ceil(threads);
            let parts: Vec<(usize, &mut [u8])> = bytes
                .chunks_mut(part)
                .enumerate()
                .map(|(i, c)| (i * part, c))
                .collect();
            let read = rsops::par::map(parts, |(at, chunk)| file.read_exact_at(chunk, at as u64));
            let mut probe = [0u8; 1];
            let at_end = file.read_at(&mut probe, len as u64).is_ok_and(|n| n == 0);
            if read.iter().all(Result::is_ok) && at_end {
                return Ok(bytes);
            }
        }
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(len).unwrap_or(0)));
    let mut file = file;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Key preferences and deadlines from the command line.
pub fn unwrap_options(args: &KeyArgs) -> UnwrapOptions {
    UnwrapOptions {
        order: args
            .decryption_order
            .as_deref()
            .map(|o| {
                o.split(',')
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        attempt_timeout: args.key_timeout,
        overall_timeout: args.timeout,
        try_all: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large file reads whole, in parts or not, even when its size is
    /// not the one last seen (it changed between `stat` and `read`).
    #[test]
    fn reads_whole_files_whatever_size_was_seen() {
        let bytes: Vec<u8> = (0..(PARALLEL_READ as usize + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut file = tempfile::tempfile().expect("temp file");
        std::io::Write::write_all(&mut file, &bytes).expect("write");
        let len = bytes.len() as u64;
        for seen in [len, len - 1000, len + 1000, 0, PARALLEL_READ] {
            let read = read_whole(&file, seen).expect("read");
            assert!(read.as_slice() == bytes.as_slice(), "size seen: {seen}");
        }
    }
}
