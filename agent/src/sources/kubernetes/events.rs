//! Each object's outcome on each node, as an Event of the object: every
//! node says its own (reporting instance = the node), so no two agents
//! write the same field, as they would fighting over one status.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    runtime::events::{Event, EventType, Recorder, Reporter},
    Client,
};
use tracing::debug;

use super::claims::{Report, State};

pub fn recorder(client: Client, node: &str) -> Recorder {
    Recorder::new(
        client,
        Reporter {
            controller: "hairpin".into(),
            instance: Some(node.to_owned()),
        },
    )
}

/// Publishes `r` from a task of its own: the loop never waits on the API
/// server, and a lost Event loses nothing (the agent's `/cluster` and its
/// log have the same).
pub fn publish(rec: &Recorder, node: &str, r: &Report) {
    let (type_, reason) = match r.state {
        State::Applied if !r.message.is_empty() => (EventType::Warning, "AppliedInPart"),
        State::Applied if !r.contested_by.is_empty() => (EventType::Warning, "Contested"),
        State::Applied => (EventType::Normal, "Applied"),
        State::Skipped => (EventType::Normal, "Skipped"),
        State::Refused => (EventType::Warning, "Refused"),
    };
    let note = match r.note() {
        n if n.is_empty() => format!("node {node}: applied"),
        n => format!("node {node}: {n}"),
    };
    let ev = Event {
        type_,
        reason: reason.into(),
        // The API server takes at most 1 kB.
        note: Some(note.chars().take(1000).collect()),
        action: "Redirect".into(),
        secondary: None,
    };
    let api_version = match r.source.kind.as_str() {
        "HairpinRedirect" => "hairpin.dev/v1alpha1",
        _ => "v1",
    };
    let reference = ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(r.source.kind.clone()),
        name: Some(r.source.name.clone()),
        namespace: r.source.namespace.clone(),
        ..ObjectReference::default()
    };
    let rec = rec.clone();
    tokio::spawn(async move {
        if let Err(e) = rec.publish(&ev, &reference).await {
            debug!("event for {}: {e}", reference.name.unwrap_or_default());
        }
    });
}
