//! What the proxy workers measured, shared with the control socket's readers: per-app traffic
//! (open connections, connects, bytes, ends by status code) and the seed's connection analytics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fastpath::verdict::Service;
use fastpath::worker::{Analytics, Event, EventKind};

/// One app's (or the CDN's) traffic.
#[derive(Debug, Default)]
pub struct AppCounters {
    /// Connections (TCP) and flows (UDP) open now.
    pub open: AtomicU64,
    /// Connections opened.
    pub connects: AtomicU64,
    /// Payload bytes from clients to origins.
    pub bytes_ingress: AtomicU64,
    /// Payload bytes from origins to clients.
    pub bytes_egress: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
}

impl AppCounters {
    /// Connections that ended, by status code.
    pub fn statuses(&self) -> BTreeMap<u16, u64> {
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A row of [`ProxyStats::apps`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTraffic {
    /// CDN or Spectrum.
    pub service: Service,
    /// The app's slot (`u32::MAX` for the CDN).
    pub app_slot: u32,
    /// Open now.
    pub open: u64,
    /// Opened.
    pub connects: u64,
    /// Bytes from clients.
    pub bytes_ingress: u64,
    /// Bytes to clients.
    pub bytes_egress: u64,
    /// Ends by status code.
    pub statuses: Vec<(u16, u64)>,
}

/// Everything the workers of one fast path share for readers.
#[derive(Debug, Default)]
pub struct ProxyStats {
    apps: Mutex<BTreeMap<(Service, u32), Arc<AppCounters>>>,
    analytics: Mutex<Analytics>,
}

impl ProxyStats {
    /// The counters of one app (made on first use; a connection keeps its `Arc`).
    pub fn app(&self, service: Service, app_slot: u32) -> Arc<AppCounters> {
        let mut m = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(m.entry((service, app_slot)).or_default())
    }

    /// Every app's traffic.
    pub fn apps(&self) -> Vec<AppTraffic> {
        let m = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .map(|((service, slot), c)| AppTraffic {
                service: *service,
                app_slot: *slot,
                open: c.open.load(Ordering::Relaxed),
                connects: c.connects.load(Ordering::Relaxed),
                bytes_ingress: c.bytes_ingress.load(Ordering::Relaxed),
                bytes_egress: c.bytes_egress.load(Ordering::Relaxed),
                statuses: c.statuses().into_iter().collect(),
            })
            .collect()
    }

    /// The analytics so far.
    pub fn analytics(&self) -> Analytics {
        self.analytics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records a connection event into the analytics and the app's counters.
    pub fn record(&self, e: &Event, app: &AppCounters) {
        self.analytics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(e);
        match e.kind {
            EventKind::Connect => {
                app.connects.fetch_add(1, Ordering::Relaxed);
                app.open.fetch_add(1, Ordering::Relaxed);
            }
            EventKind::Progress => {}
            EventKind::Disconnect | EventKind::OriginError | EventKind::ClientFiltered => {
                let _ = app
                    .open
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                        Some(v.saturating_sub(1))
                    });
                *app.statuses
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(e.status)
                    .or_default() += 1;
            }
        }
    }
}
