//! The self-metrics of the Datadog logs backend, defined in [`vigil_core::catalogue`] with
//! every other metric.
//!
//! Dropped logs are counted in the core catalogue's
//! [`VIGIL_LOG_DROPPED`](vigil_core::catalogue::VIGIL_LOG_DROPPED) with `backend="datadog"`
//! and a `reason` (see [`DropReason`](crate::DropReason)); these are the backend's other
//! counters. All of them are published from the sender thread (about once per flush interval,
//! and on every flush), so they reach the globally installed `metrics` recorder.

use vigil_core::catalogue::MetricDef;

pub use vigil_core::catalogue::{
    VIGIL_DATADOG_LOGS_PAYLOAD_SIZE, VIGIL_DATADOG_LOGS_REQUESTS, VIGIL_DATADOG_LOGS_SENT, VIGIL_DATADOG_LOGS_TRUNCATED,
};

/// Every metric this backend records besides `vigil.log.dropped`.
pub const ALL: &[MetricDef] = &[
    VIGIL_DATADOG_LOGS_SENT,
    VIGIL_DATADOG_LOGS_REQUESTS,
    VIGIL_DATADOG_LOGS_TRUNCATED,
    VIGIL_DATADOG_LOGS_PAYLOAD_SIZE,
];
