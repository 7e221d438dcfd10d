//! CPU time and memory of a process, read from `/proc`: `utime + stime` of `/proc/PID/stat`
//! and the `VmRSS` / `VmHWM` lines of `/proc/PID/status`.

use std::time::{Duration, Instant};

/// CPU time (user + system) a process has used so far, or `None` if it is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields are counted after
    // the last ')'. utime and stime are fields 14 and 15, i.e. 12 and 13 after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / clock_ticks(),
    ))
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Resident memory now, in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    status_kib(pid, "VmRSS").map(|k| k as f64 / 1024.0)
}

/// Peak resident memory, in MiB.
pub fn hwm_mib(pid: u32) -> Option<f64> {
    status_kib(pid, "VmHWM").map(|k| k as f64 / 1024.0)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// A CPU-time reading to measure a process's CPU share over a window.
#[derive(Clone, Copy, Debug)]
pub struct CpuMark {
    pid: u32,
    cpu: Duration,
    at: Instant,
}

impl CpuMark {
    pub fn now(pid: u32) -> Option<CpuMark> {
        Some(CpuMark {
            pid,
            cpu: cpu_time(pid)?,
            at: Instant::now(),
        })
    }

    /// CPU used since this mark as a percentage of one core (200 % = two cores busy).
    pub fn percent_since(&self) -> Option<f64> {
        let cpu = cpu_time(self.pid)?.saturating_sub(self.cpu);
        let wall = self.at.elapsed().as_secs_f64();
        (wall > 0.0).then(|| 100.0 * cpu.as_secs_f64() / wall)
    }
}

/// Gives freed heap back to the kernel (glibc `malloc_trim`), so an RSS reading after it shows
/// memory still in use rather than memory the allocator keeps cached.
pub fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// CPU time per thread group of a process: threads named alike once digits are removed
/// (GStreamer names streaming threads after their pad, `queue12:src` -> `queue:src`), so the
/// per-peer threads of many peers add up in one group.
pub fn thread_groups(pid: u32) -> std::collections::HashMap<String, Duration> {
    let mut groups = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return groups;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let (Ok(stat), Ok(comm)) = (
            std::fs::read_to_string(path.join("stat")),
            std::fs::read_to_string(path.join("comm")),
        ) else {
            continue;
        };
        let Some(end) = stat.rfind(')') else { continue };
        let fields: Vec<&str> = stat[end + 1..].split_whitespace().collect();
        let (Some(u), Some(s)) = (
            fields.get(11).and_then(|f| f.parse::<u64>().ok()),
            fields.get(12).and_then(|f| f.parse::<u64>().ok()),
        ) else {
            continue;
        };
        let name: String = comm
            .trim()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        *groups.entry(name).or_insert(Duration::ZERO) +=
            Duration::from_secs_f64((u + s) as f64 / clock_ticks());
    }
    groups
}

/// CPU per thread group between two [`thread_groups`] readings, in % of one core over `wall`,
/// largest first. Threads that ended between the readings are not counted.
pub fn thread_group_percent(
    before: &std::collections::HashMap<String, Duration>,
    after: &std::collections::HashMap<String, Duration>,
    wall: Duration,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = after
        .iter()
        .map(|(name, t)| {
            let used = t.saturating_sub(before.get(name).copied().unwrap_or_default());
            (
                name.clone(),
                100.0 * used.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            )
        })
        .filter(|(_, p)| *p > 0.0)
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// The 1-minute load average of the machine (runnable threads, all processes), from
/// `/proc/loadavg`: how busy the shared cores were while a figure was taken.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How many file descriptors a process has open (`/proc/PID/fd`).
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}
