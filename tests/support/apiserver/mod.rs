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
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    sync::{Arc, Condvar, Mutex},
    thread,
};

use serde_json::{json, Value};

mod serve;

/// The resources served: URL path, kind, apiVersion.
const RESOURCES: [(&str, &str, &str); 6] = [
    ("/api/v1/services", "Service", "v1"),
    ("/api/v1/pods", "Pod", "v1"),
    ("/api/v1/nodes", "Node", "v1"),
    ("/api/v1/namespaces", "Namespace", "v1"),
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
                            serve::serve(&shared, rustls::StreamOwned::new(tls, conn));
                        }
                    }
                    None => serve::serve(&shared, conn),
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
