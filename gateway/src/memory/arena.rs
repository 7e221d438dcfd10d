//! `[memory]`: the arena cap, and how the config and the environment combine (a pure decision,
//! so it is tested without touching the allocator).

use serde::Deserialize;

/// The environment variable glibc reads for its arena cap at start. When it is set, the
/// operator chose explicitly and the config leaves the allocator alone.
pub const ARENA_ENV: &str = "MALLOC_ARENA_MAX";

/// The default cap: measured as the one that keeps churn growth low without costing fan-out
/// CPU (README, "Memory allocator").
const DEFAULT_ARENA_MAX: u32 = 2;

/// `[memory]`: allocator settings of the `poolgate` process.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// The most glibc malloc arenas the process may use. `0` keeps glibc's own default (8 per
    /// core).
    pub malloc_arena_max: u32,
    /// After an endpoint has stopped (a bridge stopped or restarted), hand the memory its
    /// pipeline freed back to the system (`malloc_trim`): otherwise glibc keeps it, and a
    /// process whose endpoints come and go grows by it (README, "Memory allocator").
    pub trim_after_endpoint_stop: bool,
    /// Run with GLib's slice allocator on malloc (`G_SLICE=always-malloc`, set by re-executing
    /// the program at start, see [`super::ensure_glib_slice_malloc`]): its own caches keep
    /// what threads that come and go freed (README, "Memory allocator"). A `G_SLICE` of the
    /// environment wins.
    pub glib_slice_malloc: bool,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            malloc_arena_max: DEFAULT_ARENA_MAX,
            trim_after_endpoint_stop: true,
            glib_slice_malloc: true,
        }
    }
}

/// What [`super::apply`] does with the arena cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArenaPlan {
    /// Cap the arenas at this count.
    Set(u32),
    /// `MALLOC_ARENA_MAX` is set in the environment (its value here): glibc applied it.
    FromEnvironment(String),
    /// `malloc_arena_max = 0`: glibc's default.
    GlibcDefault,
}

/// Decides the arena cap from the config and the value of `MALLOC_ARENA_MAX`, if set.
pub fn plan(config: &MemoryConfig, env: Option<&str>) -> ArenaPlan {
    match (env, config.malloc_arena_max) {
        (Some(value), _) => ArenaPlan::FromEnvironment(value.to_string()),
        (None, 0) => ArenaPlan::GlibcDefault,
        (None, max) => ArenaPlan::Set(max),
    }
}

impl std::fmt::Display for ArenaPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArenaPlan::Set(max) => {
                write!(f, "malloc arenas capped at {max} (memory.malloc_arena_max)")
            }
            ArenaPlan::FromEnvironment(value) => {
                write!(
                    f,
                    "malloc arenas as {ARENA_ENV}={value} of the environment sets them"
                )
            }
            ArenaPlan::GlibcDefault => write!(
                f,
                "malloc arenas: glibc's default (memory.malloc_arena_max = 0)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_caps_the_arenas() {
        assert_eq!(
            plan(&MemoryConfig::default(), None),
            ArenaPlan::Set(DEFAULT_ARENA_MAX)
        );
    }

    #[test]
    fn a_configured_cap_is_used() {
        let config = MemoryConfig {
            malloc_arena_max: 4,
            ..MemoryConfig::default()
        };
        assert_eq!(plan(&config, None), ArenaPlan::Set(4));
    }

    #[test]
    fn zero_leaves_glibc_alone() {
        let config = MemoryConfig {
            malloc_arena_max: 0,
            ..MemoryConfig::default()
        };
        assert_eq!(plan(&config, None), ArenaPlan::GlibcDefault);
    }

    #[test]
    fn the_environment_wins_over_the_config() {
        let config = MemoryConfig {
            malloc_arena_max: 4,
            ..MemoryConfig::default()
        };
        assert_eq!(
            plan(&config, Some("8")),
            ArenaPlan::FromEnvironment("8".into())
        );
        assert_eq!(
            plan(&MemoryConfig::default(), Some("")),
            ArenaPlan::FromEnvironment(String::new())
        );
    }

    #[test]
    fn the_section_parses_and_refuses_unknown_keys() {
        let c: MemoryConfig = toml::from_str("malloc_arena_max = 1").unwrap();
        assert_eq!(c.malloc_arena_max, 1);
        assert!(c.trim_after_endpoint_stop, "on unless turned off");
        let c: MemoryConfig = toml::from_str("trim_after_endpoint_stop = false").unwrap();
        assert!(!c.trim_after_endpoint_stop);
        assert!(c.glib_slice_malloc, "on unless turned off");
        let c: MemoryConfig = toml::from_str("glib_slice_malloc = false").unwrap();
        assert!(!c.glib_slice_malloc);
        let e = toml::from_str::<MemoryConfig>("glib_slice_malloc = 1").unwrap_err();
        assert!(e.to_string().contains("glib_slice_malloc"), "{e}");
        let e = toml::from_str::<MemoryConfig>("arenas = 1").unwrap_err();
        assert!(e.to_string().contains("arenas"), "{e}");
        let e = toml::from_str::<MemoryConfig>("malloc_arena_max = -1").unwrap_err();
        assert!(e.to_string().contains("malloc_arena_max"), "{e}");
    }

    #[test]
    fn the_config_file_has_a_memory_section() {
        let c = crate::Config::parse("[memory]\nmalloc_arena_max = 0\n").unwrap();
        assert_eq!(c.memory.malloc_arena_max, 0);
        let c = crate::Config::parse("").unwrap();
        assert_eq!(c.memory, MemoryConfig::default());
        let e = crate::Config::parse("[memory]\nmalloc_arena_mx = 0\n").unwrap_err();
        assert!(e.contains("malloc_arena_mx"), "{e}");
    }
}
