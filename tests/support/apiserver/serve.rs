//! The server's side of a connection: requests read, lists and watches
//! answered from the store, as the real API server answers them.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Read, Write},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use super::{Shared, RESOURCES};

/// One connection: HTTP/1.1 requests until it closes.
pub(super) fn serve<S: Read + Write>(shared: &Shared, conn: S) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("authorization") {
                    shared.store.lock().unwrap().authorization = Some(v.trim().to_owned());
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let q: BTreeMap<String, String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), decode(v)))
            .collect();
        let resource = RESOURCES.iter().find(|r| r.0 == path);
        let conn = reader.get_mut();
        let watching = q.get("watch").is_some_and(|w| w == "true" || w == "1");
        let ok = match (method, resource) {
            ("GET", Some(&(_, kind, _))) if watching => watch(shared, conn, kind, &q),
            ("GET", Some(&(_, kind, api_version))) => {
                respond(conn, 200, &list(shared, kind, api_version, &q))
            }
            // Events are kept for the test to read.
            ("POST" | "PATCH", _) if path.contains("/events") => {
                let event = serde_json::from_slice::<Value>(&body).unwrap_or_default();
                shared.store.lock().unwrap().events.push(event.clone());
                respond(conn, if method == "POST" { 201 } else { 200 }, &event)
            }
            _ => respond(
                conn,
                404,
                &status(404, "NotFound", &format!("{method} {path}")),
            ),
        };
        if !ok {
            return;
        }
    }
}

/// A query value, percent-decoded.
fn decode(v: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = v.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn respond(conn: &mut impl Write, code: u16, body: &Value) -> bool {
    let body = body.to_string();
    write!(
        conn,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .and_then(|()| conn.flush())
    .is_ok()
}

/// Whether `obj` passes the request's label and field selectors.
fn selected(obj: &Value, q: &BTreeMap<String, String>) -> bool {
    let labels = &obj["metadata"]["labels"];
    let label_ok = q.get("labelSelector").is_none_or(|sel| {
        sel.split(',').filter(|t| !t.is_empty()).all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels[k].as_str() != Some(v)
            } else if let Some((k, v)) = term.split_once('=') {
                labels[k].as_str() == Some(v.trim_start_matches('='))
            } else if let Some(k) = term.strip_prefix('!') {
                labels.get(k).is_none()
            } else {
                labels.get(term).is_some()
            }
        })
    });
    let field_ok = q.get("fieldSelector").is_none_or(|sel| {
        sel.split(',').filter(|t| !t.is_empty()).all(|term| {
            let (path, want, eq) = match term.split_once("!=") {
                Some((p, v)) => (p, v, false),
                None => {
                    let (p, v) = term.split_once('=').unwrap_or((term, ""));
                    (p, v.trim_start_matches('='), true)
                }
            };
            let got = path
                .split('.')
                .fold(obj, |v, k| &v[k])
                .as_str()
                .unwrap_or_default();
            (got == want) == eq
        })
    });
    label_ok && field_ok
}

fn list(shared: &Shared, kind: &str, api_version: &str, q: &BTreeMap<String, String>) -> Value {
    let st = shared.store.lock().unwrap();
    let items: Vec<&Value> = st
        .objects
        .iter()
        .filter(|((k, _, _), o)| k == kind && selected(o, q))
        .map(|(_, o)| o)
        .collect();
    json!({"kind": format!("{kind}List"), "apiVersion": api_version,
           "metadata": {"resourceVersion": st.rv.to_string()}, "items": items})
}

/// Streams the changes after the request's resourceVersion, chunked, until
/// its timeout, a dropped connection, or the server's end.
fn watch(shared: &Shared, conn: &mut impl Write, kind: &str, q: &BTreeMap<String, String>) -> bool {
    let mut from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs);
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if conn
        .write_all(head.as_bytes())
        .and_then(|()| conn.flush())
        .is_err()
    {
        return false;
    }
    let chunk = |conn: &mut dyn Write, v: &Value| {
        let line = format!("{v}\n");
        write!(conn, "{:x}\r\n{line}\r\n", line.len())
            .and_then(|()| conn.flush())
            .is_ok()
    };
    let end = Instant::now() + timeout;
    let mut st = shared.store.lock().unwrap();
    let generation = st.generation;
    if from != 0 && from < st.compacted {
        let gone = status(410, "Expired", &format!("too old resource version: {from}"));
        drop(st);
        let _ = chunk(conn, &json!({"type": "ERROR", "object": gone}));
        return conn
            .write_all(b"0\r\n\r\n")
            .and_then(|()| conn.flush())
            .is_ok();
    }
    loop {
        // The log is in resourceVersion order: start past `from`.
        let start = st.log.partition_point(|(rv, ..)| *rv <= from);
        let events: Vec<Value> = st.log[start..]
            .iter()
            .filter(|(_, k, _, o)| k == kind && selected(o, q))
            .map(|(_, _, t, o)| json!({"type": t, "object": o}))
            .collect();
        from = st.rv;
        if !events.is_empty() {
            // Sent without the lock; what arrives meanwhile is found by
            // the next scan, before any wait.
            drop(st);
            for ev in &events {
                if !chunk(conn, ev) {
                    return false;
                }
            }
            st = shared.store.lock().unwrap();
            continue;
        }
        if st.generation != generation {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            drop(st);
            return conn
                .write_all(b"0\r\n\r\n")
                .and_then(|()| conn.flush())
                .is_ok();
        }
        st = shared.changed.wait_timeout(st, end - now).unwrap().0;
        if st.generation != generation {
            return false;
        }
    }
}
