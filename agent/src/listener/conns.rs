//! The listener's open connections, bounded: at the bound, a new one takes
//! the place of the oldest that has not sent its request yet, and is
//! turned away only when every open one is being served.

use std::{
    collections::BTreeMap,
    future::Future,
    pin::pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, Weak,
    },
    time::Duration,
};

use tokio::sync::Notify;

type Open = Mutex<BTreeMap<u64, Arc<Slot>>>;

pub struct Conns {
    cap: usize,
    next: std::sync::atomic::AtomicU64,
    /// By age: ids only grow.
    open: Arc<Open>,
}

/// One open connection.
pub struct Slot {
    id: u64,
    /// Its request arrived: it is served, not idle.
    busy: AtomicBool,
    /// It streams a monitor's events, which no request timeout ends.
    streaming: AtomicBool,
    evict: Notify,
    open: Weak<Open>,
}

impl Conns {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            next: Default::default(),
            open: Default::default(),
        }
    }

    /// A slot for a new connection, or `None` when every open one is busy.
    pub fn admit(&self) -> Option<Arc<Slot>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.cap {
            let id = open.values().find(|s| !s.busy.load(Ordering::Relaxed))?.id;
            let idle = open.remove(&id)?;
            idle.evict.notify_one();
        }
        let slot = Arc::new(Slot {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            busy: AtomicBool::new(false),
            streaming: AtomicBool::new(false),
            evict: Notify::new(),
            open: Arc::downgrade(&self.open),
        });
        open.insert(slot.id, slot.clone());
        Some(slot)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.lock().unwrap().len()
    }
}

impl Slot {
    /// Its request arrived.
    pub fn serving(&self) {
        self.busy.store(true, Ordering::Relaxed);
    }

    /// It streams from now on.
    pub fn streaming(&self) {
        self.streaming.store(true, Ordering::Relaxed);
    }

    /// Drives `conn` until it ends, is evicted, or outlives `limit` without
    /// streaming; then frees the slot.
    pub async fn run(self: Arc<Self>, conn: impl Future, limit: Duration) {
        let mut conn = pin!(conn);
        tokio::select! {
            _ = &mut conn => {}
            () = self.evict.notified() => {}
            () = tokio::time::sleep(limit) => {
                if self.streaming.load(Ordering::Relaxed) {
                    tokio::select! {
                        _ = &mut conn => {}
                        () = self.evict.notified() => {}
                    }
                }
            }
        }
        if let Some(open) = self.open.upgrade() {
            open.lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_bound_the_oldest_idle_connection_makes_room() {
        let conns = Conns::new(3);
        let a = conns.admit().unwrap();
        let b = conns.admit().unwrap();
        let c = conns.admit().unwrap();
        a.serving();
        // `b` is the oldest idle one: it is evicted, `a` (served) stays.
        let evicted = tokio::spawn(b.clone().run(std::future::pending::<()>(), Duration::MAX));
        let d = conns.admit().expect("room made");
        tokio::time::timeout(Duration::from_secs(1), evicted)
            .await
            .expect("the evicted connection ends")
            .unwrap();
        assert_eq!(conns.len(), 3);
        c.serving();
        d.serving();
        assert!(conns.admit().is_none(), "every open one is served");
        // A connection that ends frees its slot.
        a.clone().run(std::future::ready(()), Duration::MAX).await;
        assert!(conns.admit().is_some());
    }

    #[tokio::test]
    async fn a_request_ends_at_its_limit_and_a_stream_does_not() {
        let limit = Duration::from_millis(50);
        let conns = Conns::new(2);
        let plain = conns.admit().unwrap();
        plain.serving();
        plain.clone().run(std::future::pending::<()>(), limit).await;
        assert_eq!(conns.len(), 0, "the request was ended at its limit");
        let stream = conns.admit().unwrap();
        stream.serving();
        stream.streaming();
        let run = tokio::spawn(stream.clone().run(std::future::pending::<()>(), limit));
        tokio::time::sleep(limit * 6).await;
        assert!(!run.is_finished(), "a monitor's stream outlives the limit");
        run.abort();
    }
}
