//! Reading a file that a user, a spec or a saved plan names, without hanging and without
//! reading forever.
//!
//! `std::fs::read` waits for a writer when the path is a FIFO, never ends on `/dev/zero` or
//! `/dev/urandom` (also through a symlink), and trusts no limit. [`read_regular`] opens without
//! blocking, refuses anything but a regular file (checked on the opened file, so a path swapped
//! after a check cannot slip through), and reads no further than a limit whatever the file's
//! metadata says. [`read_capped`] is for inputs where a pipe is a fair thing to pass (a secret
//! from `--secret-file <(pass show …)`): any kind of file, still bounded.
//!
//! A [`ReadError`] reads as a sentence after "cannot read `FILE`: "; callers add the file and
//! what it is for.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Its text is the I/O error's own, so it is not also given as the source (an error chain
    /// would say it twice).
    #[error("{}", lower(.0))]
    Io(io::Error),
    /// A FIFO, socket, device or directory (`what` says which).
    #[error("it is {0}, and only regular files are read")]
    NotRegular(&'static str),
    #[error("it is larger than the limit of {}", human(*.0))]
    TooLarge(u64),
    #[error("it is not UTF-8 text")]
    NotText,
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        ReadError::Io(e)
    }
}

impl ReadError {
    /// The file does not exist (many callers treat that as "nothing there yet").
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// An I/O error's text as the rest of a sentence: "No such file…" → "no such file…".
fn lower(e: &io::Error) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// The whole of the regular file `path`, at most `limit` bytes; a FIFO, socket, device or
/// directory is refused without waiting, and a larger file is refused.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (file, len) = open_regular(path, limit)?;
    // Room for the whole file and the byte that would show it grew: read in one piece.
    let room = usize::try_from(len).unwrap_or(usize::MAX).saturating_add(1);
    read_bounded(file, limit, room)
}

/// Whether `path` is a regular file of at most `limit` bytes, for a file another library
/// reads by path (a kubeconfig, which kube-rs reads and whose relative paths it resolves).
/// The file could change between this check and that read; it guards against a wrong path,
/// not against a race.
pub fn check_regular(path: &Path, limit: u64) -> Result<(), ReadError> {
    open_regular(path, limit).map(drop)
}

fn open_regular(path: &Path, limit: u64) -> Result<(File, u64), ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok((file, meta.len()))
}

/// `path` as text (see [`read_regular`]); invalid UTF-8 is an error.
pub fn read_regular_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_regular(path, limit)?).map_err(|_| ReadError::NotText)
}

/// At most `limit` bytes of `path`, whatever kind of file it is (a pipe from the shell's
/// `<(…)` included); more is refused. A FIFO with no writer waits for one, as the user asked.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(ReadError::NotRegular("a directory"));
    }
    read_bounded(file, limit, 8 * 1024)
}

/// [`read_capped`] as text.
pub fn read_capped_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_capped(path, limit)?).map_err(|_| ReadError::NotText)
}

/// At most `limit` bytes of a stream (standard input) as text; more is refused.
pub fn read_stream_to_string(stream: impl Read, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_bounded(stream, limit, 8 * 1024)?).map_err(|_| ReadError::NotText)
}

fn read_bounded(file: impl Read, limit: u64, room: usize) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::with_capacity(room.min(usize::try_from(limit).unwrap_or(usize::MAX)));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// What a file that is not a regular one is, for an error ("it is a FIFO").
pub(crate) fn kind_of(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// `limit` in the largest binary unit that divides it (`64 MiB`), else in bytes.
fn human(limit: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if limit >= size && limit % size == 0 {
            return format!("{} {unit}", limit / size);
        }
    }
    format!("{limit} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("pipe");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        path
    }

    #[test]
    fn a_regular_file_is_read_whole_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_regular(&path, 5).unwrap(), b"12345");
        let err = read_regular(&path, 4).unwrap_err();
        assert_eq!(err.to_string(), "it is larger than the limit of 4 bytes");
        assert_eq!(read_capped(&path, 5).unwrap(), b"12345");
        assert!(read_capped(&path, 4).is_err());
        assert_eq!(
            read_regular(&dir.path().join("absent"), 5)
                .unwrap_err()
                .to_string(),
            "no such file or directory (os error 2)"
        );
        assert!(read_regular(&dir.path().join("absent"), 5)
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = fifo(dir.path());
        let err = read_regular(&pipe, 1024).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is a FIFO, and only regular files are read"
        );
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = read_regular(&zero, 1024).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is a device, and only regular files are read"
        );
        let err = read_regular(dir.path(), 1024).unwrap_err();
        assert!(err.to_string().starts_with("it is a directory"), "{err}");
        assert!(read_capped(dir.path(), 1024).is_err());
    }

    #[test]
    fn an_endless_device_is_read_no_further_than_the_limit() {
        let err = read_capped(Path::new("/dev/zero"), 64 << 20).unwrap_err();
        assert_eq!(err.to_string(), "it is larger than the limit of 64 MiB");
        assert_eq!(
            read_regular_to_string(Path::new("/dev/urandom"), 1 << 10)
                .unwrap_err()
                .to_string(),
            "it is a device, and only regular files are read"
        );
    }

    #[test]
    fn a_pipe_with_a_writer_is_read_by_read_capped() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = fifo(dir.path());
        let writer = {
            let pipe = pipe.clone();
            std::thread::spawn(move || std::fs::write(pipe, b"secret\n").unwrap())
        };
        assert_eq!(read_capped(&pipe, 1024).unwrap(), b"secret\n");
        writer.join().unwrap();
    }
}
