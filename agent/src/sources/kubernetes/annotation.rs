//! The Service annotation for the common case:
//! `hairpin.dev/frontends: "203.0.113.10:8080=http, [2001:db8::10]:8080=80"`
//! redirects each external address and port to the Service's port named
//! (or numbered) on the right, that is to its endpoints.

use std::net::SocketAddr;

use super::crd::PortRef;

pub const FRONTENDS_ANNOTATION: &str = "hairpin.dev/frontends";

/// One entry of the annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub frontend: SocketAddr,
    pub port: PortRef,
}

/// The annotation's entries, or why it cannot be read (the whole
/// annotation is refused: half of an operator's intent is not served).
pub fn parse(value: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (i, raw) in value.split(',').map(str::trim).enumerate() {
        let n = i + 1;
        if raw.is_empty() {
            return Err(format!("entry {n} is empty"));
        }
        let (front, port) = raw
            .split_once('=')
            .ok_or_else(|| format!("entry {n} ({raw:?}) is not ADDRESS:PORT=SERVICE-PORT"))?;
        let frontend: SocketAddr = front.trim().parse().map_err(|_| {
            format!("entry {n}: {front:?} is not ADDRESS:PORT (IPv6 in brackets: [2001:db8::1]:80)")
        })?;
        if frontend.port() == 0 {
            return Err(format!("entry {n}: port 0"));
        }
        let port = port.trim();
        let port = match port.parse::<u16>() {
            Ok(0) => return Err(format!("entry {n}: Service port 0")),
            Ok(p) => PortRef::Number(p),
            Err(_) if is_port_name(port) => PortRef::Name(port.to_owned()),
            Err(_) => {
                return Err(format!(
                    "entry {n}: {port:?} is neither a Service port number nor a port name"
                ))
            }
        };
        if entries.iter().any(|e: &Entry| e.frontend == frontend) {
            return Err(format!("entry {n}: {frontend} appears twice"));
        }
        entries.push(Entry { frontend, port });
    }
    Ok(entries)
}

/// An IANA service name, as Kubernetes port names are: up to 15 lowercase
/// letters, digits and inner hyphens, with a letter among them.
fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_both_families_by_name_and_number() {
        let got = parse("203.0.113.10:8080=http, [2001:db8::10]:8080=80").unwrap();
        assert_eq!(
            got,
            vec![
                Entry {
                    frontend: "203.0.113.10:8080".parse().unwrap(),
                    port: PortRef::Name("http".into()),
                },
                Entry {
                    frontend: "[2001:db8::10]:8080".parse().unwrap(),
                    port: PortRef::Number(80),
                },
            ]
        );
    }

    #[test]
    fn malformed_annotations_are_refused_with_their_reason() {
        for (value, why) in [
            ("", "entry 1 is empty"),
            ("203.0.113.10:8080=http,", "entry 2 is empty"),
            (
                "203.0.113.10:8080",
                "entry 1 (\"203.0.113.10:8080\") is not ADDRESS:PORT=SERVICE-PORT",
            ),
            (
                "203.0.113.10=http",
                "entry 1: \"203.0.113.10\" is not ADDRESS:PORT (IPv6 in brackets: [2001:db8::1]:80)",
            ),
            (
                "2001:db8::10:8080=http",
                "entry 1: \"2001:db8::10:8080\" is not ADDRESS:PORT (IPv6 in brackets: [2001:db8::1]:80)",
            ),
            ("203.0.113.10:0=http", "entry 1: port 0"),
            ("203.0.113.10:80=0", "entry 1: Service port 0"),
            (
                "203.0.113.10:80=Web_Port",
                "entry 1: \"Web_Port\" is neither a Service port number nor a port name",
            ),
            (
                "203.0.113.10:80=http,203.0.113.10:80=https",
                "entry 2: 203.0.113.10:80 appears twice",
            ),
        ] {
            assert_eq!(parse(value).unwrap_err(), why, "for {value:?}");
        }
    }
}
