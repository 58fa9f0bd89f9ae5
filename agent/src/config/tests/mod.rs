//! The configuration file's validation: one test per class of error, each
//! with the exact message `hairpin check` prints, and the values a valid
//! file gives.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
};

use hairpin_common::{CtTimeouts, DEFAULT_CT_ENTRIES, IPPROTO_TCP, IPPROTO_UDP, NS_PER_SEC};

use super::*;

mod address_refusals;
mod kubernetes;
mod redirect_refusals;
mod refusals;
mod values;

/// Parses `lines`, numbered from 1 as the errors number them.
fn parse(lines: &[&str]) -> Result<Config, ConfigError> {
    let mut text = lines.join("\n");
    text.push('\n');
    Config::parse(Path::new("test.yaml"), &text)
}

/// The message for a refused file, as `hairpin check` prints it.
fn refusal(lines: &[&str]) -> String {
    match parse(lines) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(e) => e.to_string(),
    }
}

/// A valid redirect on lines 1 to 7, followed by `rest` from line 8.
fn web_and<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut lines = vec![
        "redirects:",
        "  - name: web",
        "    frontend: 203.0.113.10",
        "    ports:",
        "      - { name: http, port: 8080, protocol: TCP, targetPort: 80 }",
        "    backends:",
        "      - ip: 198.51.100.2",
    ];
    lines.extend_from_slice(rest);
    lines
}

/// The message for a redirect `web` of one port, refused for its
/// `frontend` (line 3, column 15), `port` (line 5, column 17) or backend
/// `ip` (line 7, column 13).
fn refusal_of_redirect(frontend: &str, port: &str, ip: &str) -> String {
    let frontend = format!("    frontend: {frontend}");
    let port = format!("      - {{ port: {port}, protocol: TCP }}");
    let ip = format!("      - ip: {ip}");
    refusal(&[
        "redirects:",
        "  - name: web",
        &frontend,
        "    ports:",
        &port,
        "    backends:",
        &ip,
    ])
}

fn pattern(p: &str) -> glob::Pattern {
    glob::Pattern::new(p).unwrap()
}
