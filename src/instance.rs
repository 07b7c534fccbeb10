//! A processor member's instance id, the end of its transactional id (`<group>-<instance>`). It
//! must differ from every other live member's of its group, or their producers fence each other
//! turn after turn; and it is best kept across restarts, since a restarted member under the same
//! id aborts what its predecessor left open at once instead of after the transaction timeout.
//!
//! On one machine (one network namespace: a host, or a container with a network of its own) the
//! ids in use are held by Unix sockets bound in the abstract namespace, one per Kafka cluster,
//! group and id. The kernel lets go of such a name when its process ends, however it ends; it
//! leaves no file behind for a cleaner to remove or another user to own. Given an id
//! (`--instance`), a process takes it, waiting a little for a predecessor that is still shutting
//! down, and refuses to start while another process holds it. Given none, it takes
//! `<host>-<machine>-<n>` for the least `n` no other process holds, where `<machine>` is the
//! start of /etc/machine-id where there is one (so that cloned machines that kept one host name
//! still differ): the first copy on a machine takes `n` = 0 after every restart, a second started
//! beside it 1, and copies in containers, each with a host name of its own, never meet. Two
//! processes on different machines under one id cannot be seen from here; their fences are
//! (`distributed::group::Fences`).

use anyhow::bail;
use std::time::{Duration, Instant};

/// How long a given id is waited for: a predecessor stopped with SIGTERM leaves its group and
/// closes its producer before it exits.
pub const WAIT_FOR: Duration = Duration::from_secs(10);

/// Ids tried for `<host>-<machine>-<n>`.
const MAX_COPIES: u32 = 64;

/// An instance id, held while this lives (and let go by the kernel when the process ends).
#[derive(Debug)]
pub struct Instance {
    pub id: String,
    /// `None` where no name could be bound for a reason other than another holder: the id
    /// is then not checked on this machine.
    _held: Option<std::os::unix::net::UnixListener>,
}

/// Where ids are claimed: the Kafka cluster (its bootstrap servers, in any order and case) and
/// the scope (`PORCH_INSTANCE_SCOPE`: processes of one machine see each other's ids only within
/// one scope, empty by default; the tests use it to stand for another machine).
pub struct Claims {
    cluster: String,
    scope: String,
}

/// This machine's name: the host name, and the start of /etc/machine-id where there is one.
pub fn machine_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "porch".into());
    match machine_id() {
        Some(machine) => format!("{host}-{machine}"),
        None => host,
    }
}

/// The first 8 hex digits of /etc/machine-id, where it holds one.
fn machine_id() -> Option<String> {
    let text = std::fs::read_to_string("/etc/machine-id").ok()?;
    let id: String = text.trim().chars().take(8).collect();
    (id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit())).then_some(id)
}

impl Claims {
    pub fn new(bootstrap: &str, scope: &str) -> Self {
        let mut servers: Vec<String> = bootstrap
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        servers.sort();
        servers.dedup();
        Claims {
            cluster: servers.join(","),
            scope: scope.into(),
        }
    }

    /// Takes this process's instance id in `group` (see the module's text): `given`, waiting
    /// up to `wait` while another process on this machine holds it, or else the first free
    /// `<machine>-<n>`. A blank `given` counts as none.
    pub fn claim(
        &self,
        group: &str,
        given: Option<&str>,
        machine: &str,
        wait: Duration,
    ) -> anyhow::Result<Instance> {
        match given.map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) => {
                let started = Instant::now();
                let mut told = false;
                loop {
                    match self.hold(group, id) {
                        Ok(Some(held)) => {
                            return Ok(Instance {
                                id: id.into(),
                                _held: Some(held),
                            })
                        }
                        Ok(None) => {}
                        Err(e) => return Ok(unchecked(e, id.into())),
                    }
                    if started.elapsed() >= wait {
                        bail!(
                            "another process on this machine runs as instance {id:?} of group \
                             {group:?} (transactional id {group}-{id}); waited {} s for it to \
                             exit. Give each copy its own --instance / PORCH_INSTANCE, or leave \
                             it unset to take the first free <host>-<machine>-<n>",
                            wait.as_secs()
                        );
                    }
                    if !told {
                        tracing::info!(
                            "instance {id:?} of group {group:?} is held by another process on \
                             this machine; waiting up to {} s for it to exit",
                            wait.as_secs()
                        );
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            None => {
                for n in 0..MAX_COPIES {
                    let id = format!("{machine}-{n}");
                    match self.hold(group, &id) {
                        Ok(Some(held)) => {
                            return Ok(Instance {
                                id,
                                _held: Some(held),
                            })
                        }
                        Ok(None) => {}
                        // Unchecked, an id of this process alone rather than one every
                        // copy would take.
                        Err(e) => {
                            return Ok(unchecked(e, format!("{machine}-p{}", std::process::id())))
                        }
                    }
                }
                bail!("{MAX_COPIES} copies of group {group:?} already run on this machine")
            }
        }
    }

    /// The name of `id` in `group`, bound if no other process holds it.
    #[cfg(target_os = "linux")]
    fn hold(
        &self,
        group: &str,
        id: &str,
    ) -> std::io::Result<Option<std::os::unix::net::UnixListener>> {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixListener};
        let address = SocketAddr::from_abstract_name(self.name(group, id))?;
        match UnixListener::bind_addr(&address) {
            Ok(held) => Ok(Some(held)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Ok(None),
            Err(e) => Err(e),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn hold(
        &self,
        _group: &str,
        _id: &str,
    ) -> std::io::Result<Option<std::os::unix::net::UnixListener>> {
        Err(std::io::Error::other(
            "instance ids are checked on Linux only",
        ))
    }

    /// The abstract socket name of `id` in `group`: readable for `ss -xl`, with a hash of the
    /// cluster, the scope, the group and the id so that it stays one's alone when the readable
    /// part is cut to the 107 bytes a name may have.
    fn name(&self, group: &str, id: &str) -> Vec<u8> {
        let hash = [&self.cluster, &self.scope, group, id]
            .iter()
            .flat_map(|part| part.bytes().chain([0]))
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            }); // FNV-1a
        let mut name = format!("porch-instance {hash:016x} {group}-{id}").into_bytes();
        name.truncate(107);
        name
    }
}

fn unchecked(e: std::io::Error, id: String) -> Instance {
    tracing::warn!(
        error = %e,
        "cannot hold instance ids on this machine: instance id {id} is not checked against other processes"
    );
    Instance { id, _held: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Claims of a scope of their own, so that tests running at once do not meet.
    fn claims(test: &str) -> Claims {
        Claims::new(
            "127.0.0.1:9092",
            &format!("test {} {test}", std::process::id()),
        )
    }

    #[test]
    fn copies_without_an_id_take_the_first_free_number_and_get_it_back() {
        let c = claims("numbers");
        let a = c.claim("offer", None, "vm", WAIT_FOR).unwrap();
        let b = c.claim("offer", None, "vm", WAIT_FOR).unwrap();
        assert_eq!((a.id.as_str(), b.id.as_str()), ("vm-0", "vm-1"));
        // Another group's members do not count, nor a blank id.
        assert_eq!(
            c.claim("product", Some(" "), "vm", WAIT_FOR).unwrap().id,
            "vm-0"
        );
        // The first one ends (a restart): the next copy takes its id again.
        drop(a);
        assert_eq!(c.claim("offer", None, "vm", WAIT_FOR).unwrap().id, "vm-0");
        drop(b);
    }

    #[test]
    fn a_given_id_held_by_another_is_refused_after_the_wait_and_taken_once_free() {
        let c = claims("given");
        let a = c.claim("offer", Some("east-1"), "vm", WAIT_FOR).unwrap();
        assert_eq!(a.id, "east-1");
        let started = Instant::now();
        let e = c
            .claim("offer", Some("east-1"), "vm", Duration::from_millis(600))
            .unwrap_err();
        assert!(
            started.elapsed() >= Duration::from_millis(600),
            "refused before the wait"
        );
        assert!(
            e.to_string().contains(
                "another process on this machine runs as instance \"east-1\" of group \"offer\" \
                 (transactional id offer-east-1)"
            ),
            "{e}"
        );
        // Not in another group, under another id, on another cluster or in another scope.
        c.claim("product", Some("east-1"), "vm", Duration::ZERO)
            .unwrap();
        c.claim("offer", Some("east-2"), "vm", Duration::ZERO)
            .unwrap();
        Claims::new("10.0.0.1:9092", &c.scope)
            .claim("offer", Some("east-1"), "vm", Duration::ZERO)
            .unwrap();
        Claims::new("127.0.0.1:9092", &format!("{} elsewhere", c.scope))
            .claim("offer", Some("east-1"), "vm", Duration::ZERO)
            .unwrap();
        // The same cluster named in another order or case is the same cluster.
        let held = Claims::new(" LOCALHOST:9093 ,127.0.0.1:9092", &c.scope)
            .claim("offer", Some("west-1"), "vm", Duration::ZERO)
            .unwrap();
        Claims::new("127.0.0.1:9092,localhost:9093", &c.scope)
            .claim("offer", Some("west-1"), "vm", Duration::ZERO)
            .unwrap_err();
        drop(held);
        // A predecessor that exits while the next one waits hands the id over.
        let (waiting, waiter) = {
            let c = claims("given");
            let waiting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
            let w = waiting.clone();
            let waiter = std::thread::spawn(move || {
                let got = c
                    .claim("offer", Some("east-1"), "vm", WAIT_FOR)
                    .map(|i| i.id);
                w.store(false, std::sync::atomic::Ordering::SeqCst);
                got
            });
            (waiting, waiter)
        };
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            waiting.load(std::sync::atomic::Ordering::SeqCst),
            "took a held id"
        );
        drop(a);
        assert_eq!(waiter.join().unwrap().unwrap(), "east-1");
    }

    #[test]
    fn a_given_id_skips_the_numbers_of_copies_without_one() {
        let c = claims("skips");
        let given = c.claim("offer", Some("vm-0"), "vm", WAIT_FOR).unwrap();
        let free = c.claim("offer", None, "vm", WAIT_FOR).unwrap();
        assert_eq!((given.id.as_str(), free.id.as_str()), ("vm-0", "vm-1"));
    }

    #[test]
    fn long_names_are_cut_and_stay_apart() {
        let c = claims("long");
        let long = "g".repeat(200);
        assert_eq!(c.name(&long, "a").len(), 107);
        assert_ne!(c.name(&long, "a"), c.name(&long, "b"));
        let a = c.claim(&long, Some("a"), "vm", Duration::ZERO).unwrap();
        let b = c.claim(&long, Some("b"), "vm", Duration::ZERO).unwrap();
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn the_machine_name_is_the_host_name_and_the_machine_id() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let name = machine_name();
        assert!(name.starts_with(host.trim()), "{name}");
        match machine_id() {
            Some(id) => assert_eq!(name, format!("{}-{id}", host.trim())),
            None => assert_eq!(name, host.trim()),
        }
    }
}
