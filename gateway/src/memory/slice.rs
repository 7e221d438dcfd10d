//! GLib's slice allocator on malloc (`G_SLICE=always-malloc`), set by re-executing the
//! program.
//!
//! GLib 2.74 (Debian 12) still has its own slab allocator behind `g_slice_*`, which GStreamer
//! 1.22 uses for buffers, events, lists and hash tables. It keeps freed slices in per-thread
//! magazines and its own pages, which a process whose threads come and go (every peer brings
//! streaming, libnice and DTLS threads) does not get back (README, "Memory allocator").
//! `G_SLICE=always-malloc` makes `g_slice_*` call malloc, where the arena cap and the trims
//! govern it. GLib reads `G_SLICE` once, when its slice allocator initialises, and that
//! happens in GLib's own constructor, before `main`: setting the variable or calling
//! `g_slice_set_config` from inside the process is too late. So the process replaces itself
//! with the same program, same arguments, with the variable added.
//!
//! Note: `g_slice_get_config(G_SLICE_CONFIG_ALWAYS_MALLOC)` does not tell: on 2.74 it answers
//! from the settings of `g_slice_set_config`, not from `G_SLICE` (0 with the variable set too,
//! verified). [`glib_slice_always_malloc`] reads what GLib read instead: the environment this
//! program was started with.

use std::ffi::OsString;

/// The environment variable GLib reads for its slice allocator's settings.
pub const SLICE_ENV: &str = "G_SLICE";

/// The value that puts the slice allocator on malloc.
pub const ALWAYS_MALLOC: &str = "always-malloc";

/// Set by the re-execution next to [`SLICE_ENV`], so the new program knows it is the second
/// start and never re-executes again, whatever happened to `G_SLICE`.
pub const REEXEC_MARKER: &str = "POOLGATE_GLIB_SLICE_REEXEC";

/// What [`ensure_glib_slice_malloc`] does, or did, about GLib's slice allocator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlicePlan {
    /// Replace this program with itself, `G_SLICE=always-malloc` added.
    Reexec,
    /// This program is the re-executed one: the slice allocator is on malloc.
    Reexecuted,
    /// `G_SLICE` was set before poolgate started (its value here): the operator's choice,
    /// left as it is.
    FromEnvironment(String),
    /// `memory.glib_slice_malloc = false`: GLib's slice allocator as it is.
    Off,
    /// The re-executed program has no `G_SLICE` (something between the two starts removed
    /// it): not re-executed again, so no loop; GLib's slice allocator as it is.
    Lost,
    /// The re-execution failed (the error here); the program goes on with GLib's slice
    /// allocator.
    Failed(String),
}

/// Decides from the config switch, the value of `G_SLICE` and whether the re-execution
/// marker is set.
pub fn slice_plan(enabled: bool, g_slice: Option<&str>, reexecuted: bool) -> SlicePlan {
    match (reexecuted, g_slice) {
        (true, Some(ALWAYS_MALLOC)) => SlicePlan::Reexecuted,
        (true, None) => SlicePlan::Lost,
        (_, Some(value)) => SlicePlan::FromEnvironment(value.to_string()),
        (false, None) if enabled => SlicePlan::Reexec,
        (false, None) => SlicePlan::Off,
    }
}

/// Puts GLib's slice allocator on malloc when `enabled` and `G_SLICE` is not set, by replacing
/// this process with the same program (`/proc/self/exe`, same arguments and environment) with
/// `G_SLICE=always-malloc` added. Call it first thing in `main`, before any thread is started
/// and before anything is written. Returns only when no re-execution was needed (or it
/// failed): what was decided, for the log once logging is set up.
pub fn ensure_glib_slice_malloc(enabled: bool) -> SlicePlan {
    let g_slice = std::env::var_os(SLICE_ENV).map(|v| v.to_string_lossy().into_owned());
    let reexecuted = std::env::var_os(REEXEC_MARKER).is_some();
    match slice_plan(enabled, g_slice.as_deref(), reexecuted) {
        SlicePlan::Reexec => SlicePlan::Failed(reexec().to_string()),
        plan => plan,
    }
}

/// Replaces this process; returns only on failure.
#[cfg(target_os = "linux")]
fn reexec() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let exec = |program: &std::path::Path| {
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| OsString::from("poolgate"));
        std::process::Command::new(program)
            .arg0(arg0)
            .args(args)
            .env(SLICE_ENV, ALWAYS_MALLOC)
            .env(REEXEC_MARKER, "1")
            .exec()
    };
    // The program's own path first: the process name (`ps`, `pidof poolgate`) comes from it.
    // `/proc/self/exe` is this very program even when its file was replaced or removed since
    // (an upgrade in place), but a process started from it is named `exe`.
    // Its failure (e.g. the file is gone: "… (deleted)") is not worth a word: the fallback
    // follows.
    if let Ok(path) = std::env::current_exe() {
        let _ = exec(&path);
    }
    exec(std::path::Path::new("/proc/self/exe"))
}

#[cfg(not(target_os = "linux"))]
fn reexec() -> std::io::Error {
    std::io::Error::other("re-executing is only done on Linux")
}

/// Whether GLib's slice allocator of this process is on malloc: whether `G_SLICE`, as this
/// program was started with it (`/proc/self/environ`, the environment GLib read before
/// `main`; later changes to the environment do not show there, nor matter to GLib), asks for
/// `always-malloc`.
pub fn glib_slice_always_malloc() -> bool {
    std::fs::read("/proc/self/environ")
        .ok()
        .and_then(|environ| start_value(&environ, SLICE_ENV))
        .is_some_and(|value| asks_always_malloc(&value))
}

/// The value of `name` in a `/proc/<pid>/environ` image (`NAME=value` entries, NUL-separated).
fn start_value(environ: &[u8], name: &str) -> Option<String> {
    environ.split(|b| *b == 0).find_map(|entry| {
        let rest = entry.strip_prefix(name.as_bytes())?;
        let value = rest.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

/// Whether a `G_SLICE` value turns `always-malloc` on, as `g_parse_debug_string` reads it:
/// keys separated by `:`, `;`, `,` or spaces, matched ignoring case and `-` vs `_`; `all`
/// turns every key on except the ones listed with it.
fn asks_always_malloc(value: &str) -> bool {
    let normal = |key: &str| key.trim().to_ascii_lowercase().replace('_', "-");
    let keys: Vec<String> = value
        .split([':', ';', ',', ' ', '\t'])
        .map(normal)
        .filter(|k| !k.is_empty())
        .collect();
    let named = keys.iter().any(|k| k == ALWAYS_MALLOC);
    if keys.iter().any(|k| k == "all") {
        !named
    } else {
        named
    }
}

impl std::fmt::Display for SlicePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const WHY: &str = "its caches grow with peer churn, README \"Memory allocator\"";
        match self {
            SlicePlan::Reexec => write!(
                f,
                "GLib slice allocator: re-executing with {SLICE_ENV}={ALWAYS_MALLOC}"
            ),
            SlicePlan::Reexecuted => write!(
                f,
                "GLib slice allocator on malloc: re-executed with {SLICE_ENV}={ALWAYS_MALLOC} \
                 (memory.glib_slice_malloc; {WHY})"
            ),
            SlicePlan::FromEnvironment(value) => write!(
                f,
                "GLib slice allocator as {SLICE_ENV}={value:?} of the environment sets it \
                 (memory.glib_slice_malloc not applied)"
            ),
            SlicePlan::Off => write!(
                f,
                "GLib slice allocator: GLib's own (memory.glib_slice_malloc = false)"
            ),
            SlicePlan::Lost => write!(
                f,
                "GLib slice allocator: GLib's own: re-executed with {SLICE_ENV}={ALWAYS_MALLOC} \
                 but it is not in the environment any more; not re-executed again"
            ),
            SlicePlan::Failed(e) => write!(
                f,
                "GLib slice allocator: GLib's own: could not re-execute with \
                 {SLICE_ENV}={ALWAYS_MALLOC}: {e}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_by_default_without_the_variable_it_reexecutes() {
        assert_eq!(slice_plan(true, None, false), SlicePlan::Reexec);
    }

    #[test]
    fn the_reexecuted_program_does_not_reexecute_again() {
        assert_eq!(
            slice_plan(true, Some(ALWAYS_MALLOC), true),
            SlicePlan::Reexecuted
        );
        assert_eq!(slice_plan(true, None, true), SlicePlan::Lost);
        assert_eq!(slice_plan(false, None, true), SlicePlan::Lost);
    }

    #[test]
    fn the_operators_variable_wins() {
        for value in ["", "debug-blocks", ALWAYS_MALLOC] {
            assert_eq!(
                slice_plan(true, Some(value), false),
                SlicePlan::FromEnvironment(value.into())
            );
        }
        assert_eq!(
            slice_plan(false, Some(ALWAYS_MALLOC), false),
            SlicePlan::FromEnvironment(ALWAYS_MALLOC.into())
        );
    }

    #[test]
    fn off_leaves_glib_alone() {
        assert_eq!(slice_plan(false, None, false), SlicePlan::Off);
    }

    #[test]
    fn the_start_environment_is_read_by_exact_name() {
        let environ = b"G_SLICEX=all\0PATH=/bin\0G_SLICE=always-malloc\0";
        assert_eq!(
            start_value(environ, SLICE_ENV).as_deref(),
            Some(ALWAYS_MALLOC)
        );
        assert_eq!(start_value(b"PATH=/bin\0", SLICE_ENV), None);
        assert_eq!(start_value(b"G_SLICE=\0", SLICE_ENV).as_deref(), Some(""));
    }

    #[test]
    fn values_are_read_as_glib_parses_them() {
        for yes in [
            "always-malloc",
            "ALWAYS_MALLOC",
            "debug-blocks:always-malloc",
            "debug-blocks, always-malloc",
            "all",
        ] {
            assert!(asks_always_malloc(yes), "{yes:?}");
        }
        for no in ["", "debug-blocks", "all,always-malloc", "always-mallocs"] {
            assert!(!asks_always_malloc(no), "{no:?}");
        }
    }
}
