//! The merge of every source: each alone, all three in their order, who
//! wins a conflict, what no source may have, and who gets the tables' room.

use std::{net::IpAddr, path::Path, sync::Arc, time::Duration};

use serde_json::{json, Value};

use super::*;
use crate::sources::{
    dns::Outcome,
    kubernetes::claims::{Snapshot, State},
};

/// The node's own address.
const NODE: &str = "192.0.2.2";

/// A frontend written as an address, one written as a name, and the
/// cluster's settings.
const FILE: &str = r#"
redirects:
  - name: web
    frontend: 203.0.113.10
    ports: [{ port: 8080, protocol: TCP, targetPort: 80 }]
    backends: [{ ip: 198.51.100.2 }]
  - name: registry
    frontend: registry.lab
    ports: [{ port: 8080, protocol: TCP, targetPort: 5000 }]
    backends: [{ ip: 198.51.100.3 }]
kubernetes:
  allowedFrontends: [203.0.113.0/24, 192.0.2.0/24, 169.254.0.0/16]
  podCidrs: [10.244.0.0/16]
  serviceCidrs: [10.96.0.0/12]
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The sources of a test: the file, the names' answers, the cluster.
struct World {
    config: Config,
    names: Names,
    snap: Option<Snapshot>,
    saved: Option<Vec<Frontend>>,
    node: Vec<IpAddr>,
    room: Room,
    applied: Vec<Frontend>,
}

impl World {
    fn new(file: &str) -> Self {
        let config = Config::parse(Path::new("t.yaml"), file).unwrap();
        let mut names = Names::new(config.dns.clone());
        names.track(&config, std::time::Instant::now());
        Self {
            config,
            names,
            snap: None,
            saved: None,
            node: vec![ip(NODE)],
            room: Room::of(1024, 65_536),
            applied: Vec::new(),
        }
    }

    /// The file above, its name resolved to `addrs`.
    fn with_name(addrs: &[&str]) -> Self {
        let mut w = Self::new(FILE);
        w.resolve(addrs);
        w
    }

    fn resolve(&mut self, addrs: &[&str]) {
        let addrs = addrs.iter().map(|a| ip(a)).collect();
        let outcome = Outcome::Addrs(addrs, Duration::from_secs(60));
        let now = std::time::Instant::now();
        self.names.resolved("registry.lab", outcome, now);
    }

    /// The cluster lists one HairpinRedirect per address, each to Service
    /// web/web, whose one endpoint is on this node.
    fn listing(mut self, redirects: &[(&str, &str)]) -> Self {
        let mut snap = Snapshot::default();
        for (name, addr) in redirects {
            snap.redirects.push(obj(json!({
                "apiVersion": "hairpin.dev/v1alpha1", "kind": "HairpinRedirect",
                "metadata": {"name": name, "creationTimestamp": "2026-01-02T00:00:00Z"},
                "spec": {
                    "frontend": {"address": addr, "toPorts": [{"port": 8080}]},
                    "backend": {"service": {"namespace": "web", "name": "web"},
                                "toPorts": [{"port": 80}]}
                }
            })));
        }
        snap.services.push(obj(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": "web", "name": "web"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}]}
        })));
        snap.slices.push(obj(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": "web", "name": "web-1",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["198.51.100.20"], "nodeName": "n1",
                           "conditions": {"ready": true}}]
        })));
        self.snap = Some(snap);
        self
    }

    fn merge(&self) -> Desired {
        let cluster = self.config.kubernetes.as_ref().and_then(|settings| {
            let objects = match (&self.snap, &self.saved) {
                (Some(snap), _) => Objects::Listed(snap),
                (None, Some(saved)) => Objects::Saved(saved),
                (None, None) => return None,
            };
            Some(Cluster {
                settings,
                node: "n1",
                objects,
            })
        });
        merge(&Inputs {
            config: &self.config,
            names: &self.names,
            cluster,
            node: &self.node,
            room: self.room,
            applied: &self.applied,
        })
    }
}

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> Arc<T> {
    Arc::new(serde_json::from_value(v).expect("a valid object"))
}

/// Each frontend as address:port.
fn at(fes: &[Frontend]) -> Vec<String> {
    fes.iter()
        .map(|f| format!("{}:{}", f.addr, f.port))
        .collect()
}

/// Each report: (object, state, note).
fn reports(d: &Desired) -> Vec<(String, State, String)> {
    match &d.cluster {
        Some(ClusterOutcome::Listed(rs)) => rs
            .iter()
            .map(|r| (r.source.to_string(), r.state, r.note()))
            .collect(),
        other => panic!("no listing: {other:?}"),
    }
}

#[test]
fn each_source_alone_gives_its_frontends() {
    // The file: its name not resolved yet, no cluster.
    let mut w = World::new(FILE);
    w.config.kubernetes = None;
    let d = w.merge();
    assert_eq!(at(&d.frontends), ["203.0.113.10:8080"]);
    assert!(d.names_refused.is_empty() && d.cluster.is_none());

    // A name alone, at every address it has.
    let names_only = FILE.replace("frontend: 203.0.113.10", "frontend: other.lab");
    let mut w = World::new(&names_only);
    w.resolve(&["203.0.113.20", "203.0.113.21"]);
    assert_eq!(
        at(&w.merge().frontends),
        ["203.0.113.20:8080", "203.0.113.21:8080"]
    );

    // The cluster alone, listed, then from the state file.
    let mut w = World::new("kubernetes: { allowedFrontends: [203.0.113.0/24] }")
        .listing(&[("shop", "203.0.113.30")]);
    let d = w.merge();
    assert_eq!(at(&d.frontends), ["203.0.113.30:8080"]);
    assert_eq!(d.cluster_frontends(), d.frontends);
    assert_eq!(d.frontends[0].backends[0].addr, ip("198.51.100.20"));
    assert_eq!(reports(&d)[0].1, State::Applied);
    w.saved = Some(d.frontends.clone());
    w.snap = None;
    let again = w.merge();
    assert_eq!(again.frontends, d.frontends);
    assert_eq!(again.cluster, Some(ClusterOutcome::Saved(Vec::new())));
}

#[test]
fn all_three_merge_in_one_order_the_file_the_names_the_cluster() {
    let d = World::with_name(&["203.0.113.21", "203.0.113.20"])
        .listing(&[("shop", "203.0.113.30")])
        .merge();
    assert_eq!(
        at(&d.frontends),
        [
            "203.0.113.10:8080",
            "203.0.113.20:8080",
            "203.0.113.21:8080",
            "203.0.113.30:8080"
        ]
    );
    assert_eq!(at(d.cluster_frontends()), ["203.0.113.30:8080"]);
    assert_eq!(d.frontends[1].backends[0].addr, ip("198.51.100.3"));
}

#[test]
fn the_file_wins_over_a_name_and_both_over_the_cluster() {
    let d = World::with_name(&["203.0.113.10", "203.0.113.20"])
        .listing(&[("first", "203.0.113.10"), ("second", "203.0.113.20")])
        .merge();
    assert_eq!(at(&d.frontends), ["203.0.113.10:8080", "203.0.113.20:8080"]);
    assert_eq!(d.frontends[0].name, "web/8080/TCP");
    assert_eq!(d.frontends[1].backends[0].addr, ip("198.51.100.3"));
    assert_eq!(d.names_refused.len(), 1, "{:?}", d.names_refused);
    assert!(d.names_refused[0].1.contains("203.0.113.10"));
    let r = reports(&d);
    assert_eq!(r[0].0, "HairpinRedirect/first");
    assert_eq!(r[0].1, State::Refused);
    assert!(r[0].2.contains("taken by the file's web"), "{}", r[0].2);
    assert_eq!(r[1].1, State::Refused);
    assert!(
        r[1].2.contains("taken by the file's registry"),
        "{}",
        r[1].2
    );

    // From the state file, what the file or the names took is left out
    // and the rest of the object is served.
    let mut w = World::with_name(&["203.0.113.20"]);
    let mut listed = World::new("kubernetes: { allowedFrontends: [203.0.113.0/24] }")
        .listing(&[("both", "203.0.113.20")])
        .merge()
        .frontends;
    let mut other = listed[0].clone();
    other.addr = ip("203.0.113.40");
    listed.push(other);
    w.saved = Some(listed);
    assert_eq!(
        at(w.merge().cluster_frontends()),
        ["203.0.113.40:8080"],
        "the name's address is not the cluster's"
    );
}

#[test]
fn no_source_gets_the_nodes_address_or_a_reserved_one_unless_allowed() {
    let mut w = World::with_name(&[NODE, "169.254.169.254", "203.0.113.20"])
        .listing(&[("node", NODE), ("metadata", "169.254.169.254")]);
    let d = w.merge();
    assert_eq!(at(&d.frontends), ["203.0.113.10:8080", "203.0.113.20:8080"]);
    let refused: Vec<_> = d.names_refused.iter().map(|(_, why)| why).collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().any(|w| w.contains(NODE)));
    assert!(refused.iter().any(|w| w.contains("169.254.169.254")));
    assert!(reports(&d).iter().all(|r| r.1 == State::Refused));

    w.config.allow_reserved = vec!["169.254.169.254/32".parse().unwrap()];
    w.names.track(&w.config, std::time::Instant::now());
    let d = w.merge();
    assert_eq!(
        at(&d.frontends),
        [
            "203.0.113.10:8080",
            "169.254.169.254:8080",
            "203.0.113.20:8080"
        ],
        "the name has it; the cluster's later claim is refused as taken"
    );
    let r = reports(&d);
    assert_eq!(r[0].0, "HairpinRedirect/metadata");
    assert!(r[0].2.contains("taken by"), "{}", r[0].2);
    assert_eq!(r[1].1, State::Refused, "the node's address stays refused");
}

#[test]
fn the_room_goes_to_the_file_then_the_names_then_the_cluster() {
    let mut w =
        World::with_name(&["203.0.113.20", "203.0.113.21"]).listing(&[("shop", "203.0.113.30")]);
    w.room = Room::of(3, 65_536);
    let d = w.merge();
    assert_eq!(
        at(&d.frontends),
        [
            "203.0.113.10:8080",
            "203.0.113.20:8080",
            "203.0.113.21:8080"
        ]
    );
    let r = reports(&d);
    assert_eq!(r[0].1, State::Refused);
    assert!(r[0].2.contains("tables are full"), "{}", r[0].2);

    // With room for one address, the one the maps hold keeps it.
    w.room = Room::of(2, 65_536);
    w.applied = vec![d.frontends[2].clone()];
    let d = w.merge();
    assert_eq!(at(&d.frontends), ["203.0.113.10:8080", "203.0.113.21:8080"]);
    assert!(d.names_refused[0].1.contains("203.0.113.20 not served"));
}
