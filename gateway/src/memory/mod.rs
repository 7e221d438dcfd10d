//! Process-wide memory allocator settings, applied once at the start of the `poolgate` binary.
//!
//! Every GStreamer streaming thread, libnice thread and state-change thread that calls `malloc`
//! may get a glibc malloc arena of its own, up to 8 per core. A gateway whose peers come and go
//! starts and ends such threads all the time; each arena keeps its own freed memory and
//! fragments on its own, so resident memory creeps up with churn although nothing is leaked
//! (README, "Memory allocator"). Capping the arena count keeps that memory in a few shared
//! heaps where it is reused. GLib's slice allocator, which GStreamer allocates most small
//! objects from, is put on malloc too (`G_SLICE=always-malloc`), so the same rules govern it.

mod arena;
mod slice;

use std::sync::atomic::{AtomicBool, Ordering};

pub use arena::{plan, ArenaPlan, MemoryConfig, ARENA_ENV};
pub use slice::{
    ensure_glib_slice_malloc, glib_slice_always_malloc, slice_plan, SlicePlan, ALWAYS_MALLOC,
    REEXEC_MARKER, SLICE_ENV,
};

/// Whether [`release_after_endpoint_stop`] trims; set by [`apply`]. On by default, so a
/// library user (a test, a benchmark) that never calls `apply` trims too.
static TRIM_AFTER_ENDPOINT_STOP: AtomicBool = AtomicBool::new(true);

/// Applies `config` to this process's allocator, unless the environment already set it
/// ([`ARENA_ENV`], which glibc reads itself). Call it before any thread is started: arenas that
/// exist are not merged. Returns what was decided, for the log.
pub fn apply(config: &MemoryConfig) -> ArenaPlan {
    TRIM_AFTER_ENDPOINT_STOP.store(config.trim_after_endpoint_stop, Ordering::Relaxed);
    let from_env = std::env::var(ARENA_ENV).ok();
    let decision = plan(config, from_env.as_deref());
    if let ArenaPlan::Set(max) = decision {
        set_arena_max(max);
    }
    decision
}

/// Called when an endpoint has stopped and its pipeline is gone: returns the free memory
/// glibc keeps to the system, unless `memory.trim_after_endpoint_stop` is off. A stopped
/// pipeline frees tens of MiB at once (buffers, pools, thread state); glibc keeps it in its
/// arenas, fragmented, and the next endpoint's allocations do not fit it all again.
pub fn release_after_endpoint_stop() {
    if TRIM_AFTER_ENDPOINT_STOP.load(Ordering::Relaxed) {
        trim();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only returns free pages of the heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(max: u32) {
    let value = libc::c_int::try_from(max).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only changes a glibc tunable; M_ARENA_MAX takes any positive count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, value);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_max: u32) {}
