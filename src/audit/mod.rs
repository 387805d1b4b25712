//! The audit trail: one JSON record per request, written when the response has
//! finished (or failed), from exactly one place that always runs.
//!
//! A request reserves its slot in the writer's bounded queue before it is
//! processed, so when the writer falls behind, new requests wait instead of
//! records being dropped; the record itself is sent from `Drop`, which no
//! early return or client disconnect can skip.

pub mod chain;
pub mod checkpoint;
pub mod files;
pub mod json;
pub mod params;
pub mod query;
mod record;
pub mod report;
pub mod review;
pub mod verify;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use record::{
    AuditRecord, AuthInfo, Conditions, DecisionInfo, ip_text, method_name, millis, remote_text,
};
pub use writer::{AuditLog, AuditWriterError, instance_name};

use tokio::sync::mpsc::OwnedPermit;

/// The in-flight record of one request; sends itself when dropped.
///
/// The record is boxed from its start to the writer: a record is over a
/// kilobyte, and inline it was copied at each hand-over (into the guard, its
/// shared slot, the queue, the writer's batch) and sized every request's
/// future by it.
pub struct AuditGuard {
    record: Option<Box<AuditRecord>>,
    permit: Option<OwnedPermit<Box<AuditRecord>>>,
    started: Instant,
}

impl AuditGuard {
    pub fn new(record: Box<AuditRecord>, permit: OwnedPermit<Box<AuditRecord>>) -> Self {
        AuditGuard {
            record: Some(record),
            permit: Some(permit),
            started: Instant::now(),
        }
    }

    /// Mutable access to the record while the request is processed.
    pub fn record(&mut self) -> &mut AuditRecord {
        // Only `Drop` takes the record out, so it is always here before that.
        self.record.get_or_insert_with(Box::default)
    }
}

impl AuditGuard {
    /// Completes the record, lets `observe` see it, and sends it.
    fn finish(mut self, observe: impl FnOnce(&AuditRecord)) {
        if let Some(record) = self.record.as_mut() {
            record.duration_ms = millis(self.started.elapsed());
            observe(record);
        }
    }
}

impl Drop for AuditGuard {
    fn drop(&mut self) {
        if let (Some(mut record), Some(permit)) = (self.record.take(), self.permit.take()) {
            if record.duration_ms == 0.0 {
                record.duration_ms = millis(self.started.elapsed());
            }
            permit.send(record);
        }
    }
}

/// An audit guard shared between the pipeline and the response body, which
/// finishes it when the last byte has been sent (or the client went away).
#[derive(Clone)]
pub struct SharedGuard(Arc<Mutex<Option<AuditGuard>>>);

impl SharedGuard {
    pub fn new(guard: AuditGuard) -> Self {
        SharedGuard(Arc::new(Mutex::new(Some(guard))))
    }

    /// Runs `f` on the record if it has not been finished yet.
    pub fn update(&self, f: impl FnOnce(&mut AuditRecord)) {
        if let Ok(mut slot) = self.0.lock()
            && let Some(g) = slot.as_mut()
        {
            f(g.record());
        }
    }

    /// Completes and sends the record now, showing it to `observe` first
    /// (metrics count exactly what the audit log records).
    pub fn finish(&self, observe: impl FnOnce(&AuditRecord)) {
        let guard = self.0.lock().ok().and_then(|mut s| s.take());
        if let Some(g) = guard {
            g.finish(observe);
        }
    }
}
