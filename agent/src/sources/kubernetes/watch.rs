//! The objects the agent follows, held by kube-rs's reflectors: each kind is
//! listed then watched from its resourceVersion, relisted when the API
//! server says the version is gone (410), and retried with backoff while
//! the API server is away. A store keeps its last contents meanwhile, so
//! an outage changes nothing; it is replaced whole when a relist completes.

use std::path::Path;

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use k8s_openapi::api::{
    core::v1::{Namespace, Node, Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    api::{ApiResource, DynamicObject},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{
        reflector::{self, Store},
        watcher::{self, Event},
        WatchStreamExt as _,
    },
    Api, Client, Resource,
};
use serde::de::DeserializeOwned;
use tokio::{sync::mpsc::UnboundedSender, task::JoinHandle};

use super::{claims::Snapshot, crd::HairpinRedirect};

/// What a watch tells the agent.
#[derive(Debug)]
pub enum Message {
    /// A kind's store changed; `synced` once its first list is complete.
    Changed { kind: &'static str, synced: bool },
    /// A request failed; the watch retries with backoff.
    Failed { kind: &'static str, error: String },
}

/// A client for `kubeconfig`, or the in-cluster configuration (the pod's
/// ServiceAccount). Making it asks nothing of the API server.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("the kubeconfig {}", path.display()))?
        }
        None => kube::Config::incluster().context("the in-cluster configuration")?,
    };
    Client::try_from(config).context("the Kubernetes client")
}

/// The reflectors' stores, and the tasks that fill them. Redirects are held
/// as they came: each is read alone (`desired`), so that one that does not
/// read as a `HairpinRedirect` is refused by itself, not the whole list.
pub struct Watches {
    redirects: Store<DynamicObject>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    namespaces: Store<Namespace>,
    tasks: Vec<JoinHandle<()>>,
}

/// The kinds followed, by the name their messages carry.
pub const KINDS: [&str; 6] = [
    "HairpinRedirect",
    "Service",
    "EndpointSlice",
    "Pod",
    "Node",
    "Namespace",
];

impl Watches {
    /// Starts following the cluster: every Service, EndpointSlice, redirect,
    /// Node (whose addresses are never frontends) and Namespace (whose
    /// word on the socket path its pods take), and the pods of `node` only.
    pub fn start(client: &Client, node: &str, tx: &UnboundedSender<Message>) -> Self {
        let mut tasks = Vec::new();
        let all = watcher::Config::default();
        let resource = ApiResource::erase::<HairpinRedirect>(&());
        let redirects = follow(
            Api::all_with(client.clone(), &resource),
            resource,
            all.clone(),
            KINDS[0],
            tx,
            &mut tasks,
        );
        let services = follow(
            Api::all(client.clone()),
            (),
            all.clone(),
            KINDS[1],
            tx,
            &mut tasks,
        );
        let slices = follow(Api::all(client.clone()), (), all, KINDS[2], tx, &mut tasks);
        let on_node = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let pods = follow(
            Api::all(client.clone()),
            (),
            on_node,
            KINDS[3],
            tx,
            &mut tasks,
        );
        let nodes = follow(
            Api::all(client.clone()),
            (),
            watcher::Config::default(),
            KINDS[4],
            tx,
            &mut tasks,
        );
        let namespaces = follow(
            Api::all(client.clone()),
            (),
            watcher::Config::default(),
            KINDS[5],
            tx,
            &mut tasks,
        );
        Self {
            redirects,
            services,
            slices,
            pods,
            nodes,
            namespaces,
            tasks,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            redirects: self.redirects.state(),
            services: self.services.state(),
            slices: self.slices.state(),
            pods: self.pods.state(),
            nodes: self.nodes.state(),
            namespaces: self.namespaces.state(),
        }
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs a reflector for `api` (objects of type `dyntype`) in a task of its
/// own; its store is returned.
fn follow<K>(
    api: Api<K>,
    dyntype: K::DynamicType,
    config: watcher::Config,
    kind: &'static str,
    tx: &UnboundedSender<Message>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let writer = reflector::store::Writer::new(dyntype);
    let store = writer.as_reader();
    let stream = watcher::watcher(api, config)
        .default_backoff()
        .reflect(writer);
    let tx = tx.clone();
    tasks.push(tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut synced = false;
        while let Some(ev) = stream.next().await {
            let msg = match ev {
                // A relist in progress: the store changes at its end.
                Ok(Event::Init | Event::InitApply(_)) => continue,
                Ok(Event::InitDone) => {
                    synced = true;
                    Message::Changed { kind, synced }
                }
                Ok(Event::Apply(_) | Event::Delete(_)) => Message::Changed { kind, synced },
                Err(e) => Message::Failed {
                    kind,
                    error: e.to_string(),
                },
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    }));
    store
}
