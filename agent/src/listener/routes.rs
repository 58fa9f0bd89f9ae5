//! The listeners' routes: metrics and health (`/metrics`, `/healthz`,
//! `/readyz`) everywhere; on the control socket alone, what the agent
//! serves (`/degraded`, `/names`, `/cluster`, `/frontends`, `/sockets`), the monitors'
//! streams (`/events`, at most `metrics.maxMonitors`) and `POST /flush`.

use std::{convert::Infallible, sync::Arc};

use anyhow::{bail, Result};
use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt as _, Full, StreamBody};
use hyper::{
    body::{Frame, Incoming},
    header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING},
    service::{service_fn, Service},
    Method, Request, Response, StatusCode,
};
use tokio::sync::Semaphore;

use super::{conns::Slot, Access, Shared};
use crate::{
    datapath::pinned,
    listener::metrics::render,
    monitor::{filter::Filter, stream},
};

type Body = UnsyncBoxBody<Bytes, Infallible>;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

pub struct Routes {
    shared: Shared,
    /// Monitors streaming at once; one more is answered 503.
    monitors: Arc<Semaphore>,
    max_monitors: usize,
}

impl Routes {
    pub fn new(shared: Shared, max_monitors: usize) -> Self {
        Self {
            shared,
            monitors: Arc::new(Semaphore::new(max_monitors)),
            max_monitors,
        }
    }
}

/// The service of one connection.
pub fn service(
    routes: Arc<Routes>,
    access: Access,
    slot: Arc<Slot>,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send> {
    service_fn(move |req| {
        let (routes, slot) = (routes.clone(), slot.clone());
        async move {
            slot.serving();
            Ok(route(&req, &routes, access, &slot).await)
        }
    })
}

/// What `metrics.address` serves: the rest is the control socket's.
const PUBLIC: [&str; 3] = ["/metrics", "/healthz", "/readyz"];

async fn route(
    req: &Request<Incoming>,
    routes: &Arc<Routes>,
    access: Access,
    slot: &Slot,
) -> Response<Body> {
    // Nothing here takes a body: one announced is refused unread.
    let empty = req
        .headers()
        .get(CONTENT_LENGTH)
        .is_none_or(|l| l.as_bytes() == b"0");
    if !empty || req.headers().contains_key(TRANSFER_ENCODING) {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "requests carry no body\n");
    }
    if access == Access::Public && !PUBLIC.contains(&req.uri().path()) {
        return text(
            StatusCode::NOT_FOUND,
            "not here: the agent's control socket (hairpin --socket) serves it\n",
        );
    }
    let query = req.uri().query().unwrap_or_default();
    let health = &routes.shared.health;
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/events") => events(routes, slot, query),
        (&Method::POST, "/flush") => flush(routes, query).await,
        (&Method::GET, _) if !query.is_empty() => {
            text(StatusCode::BAD_REQUEST, "this path takes no query\n")
        }
        (&Method::GET, "/metrics") => {
            let routes = routes.clone();
            let scrape = move || {
                let s = &routes.shared;
                render(&s.pin_dir, &s.metrics, &s.health, &s.hub)
            };
            match tokio::task::spawn_blocking(scrape).await {
                Ok(Ok(body)) => reply(StatusCode::OK, OPENMETRICS, body),
                Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            }
        }
        (&Method::GET, "/healthz") => coded(health.healthz()),
        (&Method::GET, "/readyz") => coded(health.readyz()),
        (&Method::GET, "/degraded") => json(&health.degraded()),
        (&Method::GET, "/names") => json(&health.names()),
        (&Method::GET, "/cluster") => json(&health.cluster()),
        (&Method::GET, "/frontends") => json(&health.frontends()),
        (&Method::GET, "/sockets") => json(&health.sockets()),
        (&Method::GET, _) => text(StatusCode::NOT_FOUND, "not found\n"),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    }
}

/// `GET /events?…`: the monitor's stream of JSON lines, for as long as it
/// reads, within the monitors' bound.
fn events(routes: &Routes, slot: &Slot, query: &str) -> Response<Body> {
    let filter = match Filter::from_query(query) {
        Ok(f) => f,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e:#}\n")),
    };
    let Ok(permit) = routes.monitors.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} monitors listen already\n", routes.max_monitors),
        );
    };
    slot.streaming();
    let sub = routes.shared.hub.subscribe(filter);
    let lines = futures::stream::unfold((sub, permit), |(mut sub, permit)| async move {
        let chunk = stream::next_lines(&mut sub).await?;
        Some((Ok(Frame::data(Bytes::from(chunk))), (sub, permit)))
    });
    Response::builder()
        .header(CONTENT_TYPE, "application/x-ndjson")
        .header(CACHE_CONTROL, "no-cache")
        .body(StreamBody::new(lines).boxed_unsync())
        .expect("a valid response")
}

/// `POST /flush[?frontend=ID]`: ends the flows of one frontend, or all.
async fn flush(routes: &Routes, query: &str) -> Response<Body> {
    let id = match flush_target(query) {
        Ok(id) => id,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e:#}\n")),
    };
    let pin_dir = routes.shared.pin_dir.clone();
    let done = tokio::task::spawn_blocking(move || -> Result<Option<_>> {
        if let Some(id) = id {
            let pinned = pinned::Pinned::open(&pin_dir)?;
            if !pinned::frontends(&pinned)?.iter().any(|f| f.id == id) {
                return Ok(None);
            }
        }
        crate::conntrack::flows::flush(&pin_dir, id).map(Some)
    })
    .await;
    match done {
        Ok(Ok(Some(ended))) => {
            routes.shared.hub.publish(&ended.events);
            text(StatusCode::OK, format!("{}\n", ended.flows))
        }
        Ok(Ok(None)) => text(StatusCode::NOT_FOUND, "no such frontend\n"),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// The frontend a flush names: none (every flow) or `frontend=ID`, alone.
fn flush_target(query: &str) -> Result<Option<u32>> {
    if query.is_empty() {
        return Ok(None);
    }
    match query.split_once('=') {
        Some(("frontend", id)) if !id.contains('&') => Ok(Some(id.parse()?)),
        _ => bail!("a flush takes one parameter, frontend=ID; not {query:?}"),
    }
}

fn reply(code: StatusCode, kind: &'static str, body: String) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(CONTENT_TYPE, kind)
        .body(Full::new(Bytes::from(body)).boxed_unsync())
        .expect("a valid response")
}

fn text(code: StatusCode, body: impl Into<String>) -> Response<Body> {
    reply(code, TEXT, body.into())
}

fn coded((code, body): (u16, String)) -> Response<Body> {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(code, TEXT, body)
}

fn json<T: serde::Serialize>(value: &T) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(body) => reply(StatusCode::OK, JSON, body),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::flush_target;

    #[test]
    fn a_flush_names_one_frontend_or_none_and_nothing_else() {
        assert_eq!(flush_target("").unwrap(), None);
        assert_eq!(flush_target("frontend=7").unwrap(), Some(7));
        for bad in [
            "x=1&frontend=999",
            "frontend=7&x=1",
            "frontend=",
            "frontend=-1",
            "all",
        ] {
            assert!(flush_target(bad).is_err(), "{bad}");
        }
    }
}
