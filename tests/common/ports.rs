//! Ports for the roles a test or benchmark starts.

use std::net::TcpListener;

/// A port for a role to listen on, below the kernel's ephemeral range (32768 and up on Linux):
/// a port the kernel handed out for `:0` could be taken by any outgoing connection (to Kafka,
/// to Cassandra) before the role binds it. Each pick in this process is new (the start depends
/// on the process id, so the test binaries run one after another do not reuse each other's
/// ports), and a port something already listens on is skipped.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(2_654_435_761)) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN);
}
