//! Re-executing the current program inside a network namespace whose only interface is `lo`.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Set in the environment of the re-executed program, so it knows it is already isolated.
const MARKER: &str = "POOLGATE_LOOPBACK_NAMESPACE";

/// Network interfaces of this process's network namespace, from `/proc/self/net/dev`
/// (`/sys/class/net` would show the namespace that mounted /sys, not ours).
pub fn interfaces() -> Vec<String> {
    std::fs::read_to_string("/proc/self/net/dev")
        .map(|text| {
            text.lines()
                .skip(2)
                .filter_map(|l| l.split(':').next())
                .map(|name| name.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// True when the only network interface this process sees is `lo`.
pub fn is_loopback_only() -> bool {
    interfaces() == ["lo"]
}

/// Makes sure the rest of the program runs in a loopback-only network namespace.
///
/// If this process already sees only `lo`, returns. Otherwise replaces the process (same
/// arguments, same environment) with itself started under `unshare -n`, after bringing `lo` up.
/// Needs root (CI and the developers' machines run as root). Panics with a clear message when
/// the namespace cannot be made: a WebRTC test must never fall back to the real network.
pub fn enter_loopback_only() {
    if is_loopback_only() {
        return;
    }
    if std::env::var_os(MARKER).is_some() {
        panic!(
            "re-executed under `unshare -n` but still see interfaces {:?}; refusing to run WebRTC \
             traffic outside a loopback-only namespace",
            interfaces()
        );
    }
    let exe = std::env::current_exe().expect("cannot find the current executable");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let err = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg("sh")
        .arg("-c")
        .arg("ip link set lo up && exec \"$0\" \"$@\"")
        .arg(&exe)
        .args(&args)
        .env(MARKER, "1")
        .exec();
    panic!(
        "could not re-execute {} in a loopback-only network namespace with `unshare --net` \
         (needs root, util-linux and iproute2): {err}",
        exe.display()
    );
}
