//! A Kubernetes API server of the tests' own, over plain HTTP, faithful
//! where the agent depends on it: the real JSON objects, list then watch
//! from a resourceVersion, monotonically increasing resourceVersions,
//! label and field selectors, ADDED/MODIFIED/DELETED events, `410 Gone`
//! for a compacted resourceVersion, and connections it drops on command.
//! No kube-apiserver can be installed where the tests run.
//!
//! It listens inside a lab namespace (the socket belongs to the namespace
//! of the thread that made it), on a lab address only; over TLS when the
//! agent finds it as a pod does, through its ServiceAccount (`start_tls`).

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufRead as _, BufReader, Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    sync::{Arc, Condvar, Mutex},
    thread,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

/// The resources served: URL path, kind, apiVersion.
const RESOURCES: [(&str, &str, &str); 5] = [
    ("/api/v1/services", "Service", "v1"),
    ("/api/v1/pods", "Pod", "v1"),
    ("/api/v1/nodes", "Node", "v1"),
    (
        "/apis/discovery.k8s.io/v1/endpointslices",
        "EndpointSlice",
        "discovery.k8s.io/v1",
    ),
    (
        "/apis/hairpin.dev/v1alpha1/hairpinredirects",
        "HairpinRedirect",
        "hairpin.dev/v1alpha1",
    ),
];

#[derive(Default)]
struct Store {
    rv: u64,
    /// By (kind, namespace, name).
    objects: BTreeMap<(String, String, String), Value>,
    /// Every change: (resourceVersion, kind, event type, object).
    log: Vec<(u64, String, &'static str, Value)>,
    /// Watches from below this resourceVersion get 410 Gone.
    compacted: u64,
    /// Bumped to end every open connection.
    generation: u64,
    /// Events created or patched, as sent.
    events: Vec<Value>,
    /// The `Authorization` header of the last request that had one.
    authorization: Option<String>,
}

#[derive(Default)]
struct Shared {
    store: Mutex<Store>,
    changed: Condvar,
    conns: Mutex<Vec<TcpStream>>,
}

pub struct ApiServer {
    shared: Arc<Shared>,
    netns: String,
    pub addr: SocketAddr,
    listener: Option<TcpListener>,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The certificate authority of its TLS certificate (PEM).
    pub ca_pem: Option<String>,
}

impl ApiServer {
    /// Serves on `addr` inside network namespace `netns`.
    pub fn start(netns: &str, addr: SocketAddr) -> Self {
        let mut s = Self {
            shared: Arc::default(),
            netns: netns.to_owned(),
            addr,
            listener: None,
            tls: None,
            ca_pem: None,
        };
        s.listen();
        s
    }

    /// Serves HTTPS, with a certificate for `addr`'s IP signed by a
    /// certificate authority of its own (`ca_pem`).
    pub fn start_tls(netns: &str, addr: SocketAddr) -> Self {
        let (config, ca_pem) = tls_config(addr.ip());
        let mut s = Self {
            shared: Arc::default(),
            netns: netns.to_owned(),
            addr,
            listener: None,
            tls: Some(Arc::new(config)),
            ca_pem: Some(ca_pem),
        };
        s.listen();
        s
    }

    fn listen(&mut self) {
        let (netns, addr, shared) = (self.netns.clone(), self.addr, self.shared.clone());
        let tls = self.tls.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let ns = File::open(format!("/run/netns/{netns}")).expect("the lab namespace");
            // SAFETY: setns on this thread only, with a valid descriptor.
            assert_eq!(
                unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
                0
            );
            let listener = TcpListener::bind(addr).expect("bind the API server");
            tx.send(listener.try_clone().expect("listener")).unwrap();
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                shared.conns.lock().unwrap().push(conn.try_clone().unwrap());
                let shared = shared.clone();
                let tls = tls.clone();
                thread::spawn(move || match tls {
                    // A failed handshake ends the connection.
                    Some(config) => {
                        if let Ok(tls) = rustls::ServerConnection::new(config) {
                            serve(&shared, rustls::StreamOwned::new(tls, conn));
                        }
                    }
                    None => serve(&shared, conn),
                });
            }
        });
        self.listener = Some(rx.recv().expect("the API server listens"));
    }

    /// Creates or replaces an object (its kind and metadata say which).
    pub fn apply(&self, mut obj: Value) {
        let mut st = self.shared.store.lock().unwrap();
        st.rv += 1;
        let rv = st.rv;
        let key = key_of(&obj);
        let event = if st.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let meta = &mut obj["metadata"];
        meta["resourceVersion"] = json!(rv.to_string());
        if meta.get("uid").is_none() {
            meta["uid"] = json!(format!("uid-{rv}"));
        }
        if meta.get("creationTimestamp").is_none() {
            meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        st.objects.insert(key.clone(), obj.clone());
        st.log.push((rv, key.0, event, obj));
        self.shared.changed.notify_all();
    }

    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let mut st = self.shared.store.lock().unwrap();
        let key = (kind.to_owned(), namespace.to_owned(), name.to_owned());
        let Some(mut obj) = st.objects.remove(&key) else {
            return;
        };
        st.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        let rv = st.rv;
        st.log.push((rv, key.0, "DELETED", obj));
        self.shared.changed.notify_all();
    }

    /// The credentials of the last request that had some.
    pub fn authorization(&self) -> Option<String> {
        self.shared.store.lock().unwrap().authorization.clone()
    }

    /// The Events the agents sent.
    pub fn events(&self) -> Vec<Value> {
        self.shared.store.lock().unwrap().events.clone()
    }

    /// Forgets the change log: a watch resumed from before now gets
    /// `410 Gone` and must list again.
    pub fn compact(&self) {
        let mut st = self.shared.store.lock().unwrap();
        // Compaction takes a version of its own, as etcd's does.
        st.rv += 1;
        st.compacted = st.rv;
        st.log.clear();
    }

    /// Ends every open connection (watches included).
    pub fn drop_connections(&self) {
        self.shared.store.lock().unwrap().generation += 1;
        self.shared.changed.notify_all();
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Goes away as a killed API server does: no listener, no connection.
    pub fn stop(&mut self) {
        if let Some(l) = self.listener.take() {
            // Unblocks the accepting thread, which then ends.
            // SAFETY: shutdown on a valid socket.
            unsafe { libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR) };
        }
        self.drop_connections();
    }

    /// Comes back, with the objects it had (and any applied meanwhile).
    pub fn restart(&mut self) {
        self.stop();
        self.listen();
    }

    /// A kubeconfig for this server: plain HTTP, no credentials.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: http://{}\n\
             users:\n- name: agent\n  user: {{}}\ncontexts:\n- name: lab\n  context:\n    cluster: lab\n    user: agent\n\
             current-context: lab\n",
            self.addr
        )
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn key_of(obj: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        s(&obj["kind"]),
        s(&obj["metadata"]["namespace"]),
        s(&obj["metadata"]["name"]),
    )
}

/// A certificate for `ip` and the PEM of the authority that signed it.
fn tls_config(ip: std::net::IpAddr) -> (rustls::ServerConfig, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");
    let key = KeyPair::generate().expect("a server key");
    let cert = CertificateParams::new(vec![ip.to_string()])
        .expect("server parameters")
        .signed_by(&key, &ca, &ca_key)
        .expect("the server certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("the server's TLS configuration");
    (config, ca.pem())
}

/// One connection: HTTP/1.1 requests until it closes.
fn serve<S: Read + Write>(shared: &Shared, conn: S) {
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
