//! The Python venv the suites that drive Python tools share (Confluent's client in
//! tests/confluent_interop.rs, moto's S3 server in tests/images_s3.rs): built on first use under
//! `${XDG_CACHE_HOME:-~/.cache}/porch/python-venv` from tests/python/requirements.txt, and
//! reused while the pinned requirements and the Python version stay the same; if it cannot be
//! built, the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// tests/python: the requirements and the scripts.
pub const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
const REQUIREMENTS: &str = include_str!("../python/requirements.txt");

/// FNV-1a: a hash that stays the same across builds and toolchains, for the venv's marker.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The venv's python, with tests/python/requirements.txt installed: built when missing or when
/// its marker names other requirements or another Python.
pub fn python_venv() -> PathBuf {
    let started = Instant::now();
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    let venv = cache.join("porch").join("python-venv");
    let python = venv.join("bin").join("python");
    let marker = venv.join(".porch-requirements");
    let version = run(
        "python3 --version",
        Command::new("python3").arg("--version"),
    );
    let stamp = format!(
        "{:016x}",
        fnv1a(format!("{}\n{REQUIREMENTS}", version.trim()).as_bytes())
    );
    if python.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(&stamp) {
        eprintln!(
            "python venv {} reused ({:.1} s)",
            venv.display(),
            started.elapsed().as_secs_f64()
        );
        return python;
    }
    // Stale or half-built: start over. The marker is written last, so a build that stopped
    // half-way is never taken for a complete one.
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(venv.parent().unwrap()).expect("create the venv's parent");
    run(
        "python3 -m venv",
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
    );
    run(
        "pip install -r tests/python/requirements.txt",
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--only-binary=:all:",
                "-r",
            ])
            .arg(Path::new(PYTHON_DIR).join("requirements.txt")),
    );
    std::fs::write(&marker, &stamp).expect("write the venv marker");
    eprintln!(
        "python venv {} created ({:.1} s)",
        venv.display(),
        started.elapsed().as_secs_f64()
    );
    python
}

/// A program the venv installed (`moto_server`), beside its python.
pub fn venv_program(python: &Path, name: &str) -> PathBuf {
    python.with_file_name(name)
}
