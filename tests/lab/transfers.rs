//! Long transfers through a frontend, to prove that flows survive what the
//! agent goes through.

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use crate::support::lab::{Background, Lab, FRONTEND};

/// A random file served by backend pod `pod` at `/files/<name>`; returns
/// its bytes.
pub fn serve_file(lab: &Lab, pod: &str, name: &str, mib: usize) -> Vec<u8> {
    let dir = lab.run_dir().join(pod).join("files");
    fs::create_dir_all(&dir).expect("files dir");
    let mut data = vec![0u8; mib << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        // xorshift: cheap bytes that no compression or cache can fake.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    fs::write(dir.join(name), &data).expect("write file");
    data
}

/// A rate-limited download through the frontend, in the background.
pub fn download(
    lab: &Lab,
    ns: &str,
    name: &str,
    port: u16,
    rate: &str,
) -> (Background, std::path::PathBuf) {
    download_from(lab, ns, FRONTEND, name, port, rate)
}

/// A rate-limited download through the frontend at `addr`.
pub fn download_from(
    lab: &Lab,
    ns: &str,
    addr: &str,
    name: &str,
    port: u16,
    rate: &str,
) -> (Background, std::path::PathBuf) {
    let out = lab.run_dir().join(format!("got-{ns}-{name}"));
    let bg = lab.background_script(
        ns,
        &format!(
            "curl -s --max-time 60 --limit-rate {rate} -o {} -w '%{{http_code}}' http://{addr}:{port}/files/{name}; echo \" exit=$?\"",
            out.display()
        ),
        &format!("curl-{ns}-{name}.txt"),
    );
    (bg, out)
}

/// What a download that went well reports.
pub const COMPLETE: &str = "200 exit=0";

/// Waits (bounded) for a download to end and returns its HTTP status and
/// curl's exit status (`200 exit=0`).
pub fn finish_download(mut bg: Background, timeout: Duration) -> String {
    let start = Instant::now();
    while bg.running() && start.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!bg.running(), "download still running after {timeout:?}");
    bg.finish().trim().to_owned()
}

pub fn assert_same(got: &Path, want: &[u8], what: &str) {
    let got = fs::read(got).unwrap_or_default();
    assert!(
        got == want,
        "{what}: got {} bytes, want {} identical bytes",
        got.len(),
        want.len()
    );
}
