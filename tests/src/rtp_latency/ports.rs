//! The UDP ports a process has open: its socket inodes (`/proc/PID/fd`) looked up in
//! `/proc/PID/net/udp` and `udp6`.

use std::collections::HashSet;

/// Local UDP ports of `pid`'s sockets (empty if it is gone).
pub fn udp_ports(pid: u32) -> HashSet<u16> {
    let mut inodes = HashSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in dir.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                if let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                {
                    inodes.insert(inode.to_string());
                }
            }
        }
    }
    let mut ports = HashSet::new();
    for table in ["udp", "udp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            ports.extend(ports_of(&text, &inodes));
        }
    }
    ports
}

/// The local ports of the rows of a `/proc/net/udp` table whose inode is in `inodes`.
fn ports_of(table: &str, inodes: &HashSet<String>) -> Vec<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let inode = fields.get(9)?;
            if !inodes.contains(*inode) {
                return None;
            }
            let port = local.rsplit(':').next()?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_local_port_of_owned_sockets_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
         1: 0100007F:9C40 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 555 2 0000000000000000 0\n\
         2: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0\n";
        let inodes: HashSet<String> = ["555".to_string()].into();
        assert_eq!(ports_of(table, &inodes), vec![40000]);
    }
}
