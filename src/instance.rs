//! A processor member's instance id, the second half of its transactional id
//! (`<group>-<instance>`). It must differ from every other live member's of its group, or their
//! producers fence each other turn after turn; and it is best kept across restarts, since a
//! restarted member under the same id aborts what its predecessor left open at once instead of
//! after the transaction timeout.
//!
//! On one machine the ids in use are held by advisory locks (`flock`) on files in the temporary
//! directory, one per group and id, which the kernel lets go when the process ends, however it
//! ends. Given an id (`--instance`), a process takes its lock, waiting a little for a predecessor
//! that is still shutting down, and refuses to start while another process holds it. Given
//! none, it takes `<host>-<n>` for the least `n` whose lock is free: the first copy on a machine
//! is `<host>-0` after every restart, a second started beside it `<host>-1`, and copies in
//! containers, each with a host name of its own, never meet. Two processes on different machines
//! under one id cannot be seen from here; their fences are (`distributed::Fences`).

use anyhow::bail;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a given id's lock is waited for: a predecessor stopped with SIGTERM leaves its group
/// and closes its producer before it exits.
pub const WAIT_FOR: Duration = Duration::from_secs(10);

/// Ids tried for `<host>-<n>`.
const MAX_COPIES: u32 = 64;

/// An instance id, held while this lives (and released by the kernel when the process ends).
#[derive(Debug)]
pub struct Instance {
    pub id: String,
    /// `None` where no lock could be kept (the directory cannot be written): the id is then
    /// not checked on this machine.
    _lock: Option<File>,
}

/// Where the locks live: a folder of the temporary directory.
pub fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("porch-instances")
}

/// This machine's name (the container's, in a container).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "porch".into())
}

/// Takes this process's instance id in `group` (see the module's text): `given`, waiting up
/// to `wait` while another process on this machine holds it, or else the first free
/// `<host>-<n>`.
pub fn claim(
    dir: &Path,
    group: &str,
    given: Option<&str>,
    wait: Duration,
) -> anyhow::Result<Instance> {
    let unchecked = |e: std::io::Error, id: String| {
        tracing::warn!(
            error = %e,
            dir = %dir.display(),
            "cannot keep instance locks: instance id {id} is not checked against other processes on this machine"
        );
        Ok(Instance { id, _lock: None })
    };
    if let Err(e) = create_dir(dir) {
        let id = given.map_or_else(|| format!("{}-0", host_name()), str::to_string);
        return unchecked(e, id);
    }
    match given {
        Some(id) => {
            let started = Instant::now();
            let mut told = false;
            loop {
                match try_lock(dir, group, id) {
                    Ok(Some(lock)) => {
                        return Ok(Instance {
                            id: id.into(),
                            _lock: Some(lock),
                        })
                    }
                    Ok(None) => {}
                    Err(e) => return unchecked(e, id.into()),
                }
                if started.elapsed() >= wait {
                    bail!(
                        "another process on this machine runs as instance {id:?} of group {group:?} \
                         (its transactional id): give each copy its own --instance / PORCH_INSTANCE, \
                         or leave it unset to take the first free <host>-<n>"
                    );
                }
                if !told {
                    tracing::info!(
                        "instance {id:?} of group {group:?} is held by another process on this machine; \
                         waiting up to {} s for it to exit",
                        wait.as_secs()
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        None => {
            let host = host_name();
            for n in 0..MAX_COPIES {
                let id = format!("{host}-{n}");
                match try_lock(dir, group, &id) {
                    Ok(Some(lock)) => {
                        return Ok(Instance {
                            id,
                            _lock: Some(lock),
                        })
                    }
                    Ok(None) => {}
                    Err(e) => return unchecked(e, id),
                }
            }
            bail!("{MAX_COPIES} copies of group {group:?} already run on this machine")
        }
    }
}

/// The folder, open to every user (like the temporary directory itself) when this creates it.
fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777))
}

/// The lock of `id` in `group` if no other process holds it. The file is opened to read,
/// which is all a lock needs, so that one another user's process left behind serves too.
fn try_lock(dir: &Path, group: &str, id: &str) -> std::io::Result<Option<File>> {
    use std::io::ErrorKind;
    let path = dir.join(file_name(group, id));
    let file = match File::open(&path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => File::open(&path),
                created => created,
            }
        }
        opened => opened,
    }?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// A file name for a group and id, whatever characters they hold: their safe characters for a
/// reader, and a hash of both so that two names that differ only in others do not share a file.
fn file_name(group: &str, id: &str) -> String {
    let raw = format!("{group}\u{0}{id}");
    let safe: String = format!("{group}.{id}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(150)
        .collect();
    // FNV-1a, 64 bits.
    let hash = raw.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{safe}.{hash:016x}.lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of its own for a test's locks, removed when the test ends.
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl std::ops::Deref for Dir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    fn dir() -> Dir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d =
            std::env::temp_dir().join(format!("porch-instance-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    #[test]
    fn copies_without_an_id_take_the_first_free_host_number_and_get_it_back() {
        let d = dir();
        let host = host_name();
        let a = claim(&d, "offer", None, WAIT_FOR).unwrap();
        let b = claim(&d, "offer", None, WAIT_FOR).unwrap();
        assert_eq!(a.id, format!("{host}-0"));
        assert_eq!(b.id, format!("{host}-1"));
        // Another group's members do not count.
        assert_eq!(
            claim(&d, "product", None, WAIT_FOR).unwrap().id,
            format!("{host}-0")
        );
        // The first one ends (a restart): the next copy takes its id again.
        drop(a);
        assert_eq!(
            claim(&d, "offer", None, WAIT_FOR).unwrap().id,
            format!("{host}-0")
        );
        drop(b);
    }

    #[test]
    fn a_given_id_held_by_another_is_refused_after_the_wait_and_taken_once_free() {
        let d = dir();
        let a = claim(&d, "offer", Some("east-1"), WAIT_FOR).unwrap();
        assert_eq!(a.id, "east-1");
        let started = Instant::now();
        let e = claim(&d, "offer", Some("east-1"), Duration::from_millis(600)).unwrap_err();
        assert!(
            started.elapsed() >= Duration::from_millis(600),
            "refused before the wait"
        );
        assert!(
            e.to_string()
                .contains("another process on this machine runs as instance \"east-1\""),
            "{e}"
        );
        // Not in another group, nor under another id.
        claim(&d, "product", Some("east-1"), Duration::ZERO).unwrap();
        claim(&d, "offer", Some("east-2"), Duration::ZERO).unwrap();
        // A predecessor that exits while the next one waits hands the id over.
        let waiter = {
            let d = d.to_path_buf();
            std::thread::spawn(move || claim(&d, "offer", Some("east-1"), WAIT_FOR).map(|i| i.id))
        };
        std::thread::sleep(Duration::from_millis(500));
        drop(a);
        assert_eq!(waiter.join().unwrap().unwrap(), "east-1");
    }

    #[test]
    fn a_given_id_skips_the_host_numbers_of_copies_without_one() {
        let d = dir();
        let given = claim(&d, "offer", Some(&format!("{}-0", host_name())), WAIT_FOR).unwrap();
        let free = claim(&d, "offer", None, WAIT_FOR).unwrap();
        assert_ne!(free.id, given.id);
    }

    #[test]
    fn names_of_any_characters_get_distinct_files() {
        assert_ne!(file_name("offer", "a/b"), file_name("offer", "a_b"));
        assert_ne!(file_name("a.b", "c"), file_name("a", "b.c"));
        assert!(file_name("p/../offer", "x y")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
    }

    #[test]
    fn without_a_folder_for_locks_the_id_is_given_unchecked() {
        let d = dir();
        let file = d.join("not-a-folder");
        std::fs::write(&file, b"").unwrap();
        let i = claim(&file.join("locks"), "offer", Some("east-1"), WAIT_FOR).unwrap();
        assert_eq!(i.id, "east-1");
        let j = claim(&file.join("locks"), "offer", None, WAIT_FOR).unwrap();
        assert_eq!(j.id, format!("{}-0", host_name()));
    }
}
