//! Bounded reads of the files a configuration names, and private creation of the files the
//! daemon writes.
//!
//! A path may name anything: `/dev/zero` would be read until memory runs out and a FIFO would
//! block `check-config` (the unit's `ExecStartPre`) for ever. Only regular files are read, and
//! at most a stated number of bytes. Outside systemd (whose unit sets `UMask=0077`), the store
//! and baselines would otherwise be created readable by every local user.

use std::io::Read;
use std::path::Path;

/// Largest credential file (`api_key_file`, `dsn_file`).
pub const MAX_CREDENTIAL_BYTES: u64 = 64 * 1024;
/// Largest configuration, suite or schema file.
pub const MAX_TEXT_BYTES: u64 = 16 * 1024 * 1024;
/// Largest baseline file.
pub const MAX_BASELINE_BYTES: u64 = 512 * 1024 * 1024;

/// The contents of the regular file at `path`, refused when it is anything else (FIFO, device,
/// directory, socket) or larger than `limit` bytes. Errors say which, in words.
pub fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind};
    let meta = std::fs::metadata(path)?;
    // A directory is left to the read below, whose error ("Is a directory") says it all.
    if !meta.is_file() && !meta.is_dir() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("not a regular file (it is {})", kind(&meta.file_type())),
        ));
    }
    let file = std::fs::File::open(path)?;
    // The path may have been replaced between the two looks: check what was opened.
    let opened = file.metadata()?;
    if !opened.is_file() && !opened.is_dir() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than the limit of {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// [`read_limited`] as UTF-8 text.
pub fn read_text_limited(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_limited(path, limit)?).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (first invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

fn kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Creates the file at `path` readable and writable by its owner only (0600), unless it exists.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `dir` and its missing parents accessible by their owner only (0700).
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Opens `path` for writing a new file that only its owner can read (0600), replacing any.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("key");
        std::fs::write(&f, "sk-123\n").unwrap();
        assert_eq!(read_limited(&f, 7).unwrap(), b"sk-123\n");
        let e = read_limited(&f, 6).unwrap_err().to_string();
        assert!(e.contains("larger than the limit of 6 bytes"), "{e}");
        let e = read_limited(dir.path(), 100).unwrap_err().to_string();
        assert!(e.contains("Is a directory"), "{e}");
        let e = read_limited(Path::new("/dev/zero"), 100)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a device"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn created_files_and_directories_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        create_private_dir_all(&sub).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        let f = sub.join("db");
        create_private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::write(&f, "x").unwrap();
        create_private_file(&f).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"x", "an existing file is kept");
        drop(create_private(&sub.join("new")).unwrap());
        assert_eq!(mode(&sub.join("new")), 0o600);
    }
}
