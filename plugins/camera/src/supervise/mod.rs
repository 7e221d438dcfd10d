//! Camera sessions, their failures, and reconnecting.

pub mod backoff;
pub mod failure;
pub mod session;
pub mod shared;
pub mod supervisor;
pub mod watchdog;
