//! Capturing every UDP datagram on `lo` with a packet socket (needs root, as the namespace
//! does), with the kernel's receive timestamp of each.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::frames::RtpPacket;

/// `SIOCGSTAMPNS` (linux/sockios.h): the last packet's receive time as a timespec.
const SIOCGSTAMPNS: libc::c_ulong = 0x8907;

/// `ETH_P_ALL` in network byte order, as `socket(2)` wants it.
fn eth_p_all() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

/// Captures RTP packets on `lo` for `duration` (blocking: run it on its own thread).
/// Each datagram is taken once, as it arrives (loopback also shows it going out).
pub fn capture_rtp(duration: Duration) -> anyhow::Result<Vec<RtpPacket>> {
    // SAFETY: plain socket calls on a descriptor we own and close below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, eth_p_all() as i32) };
    if fd < 0 {
        bail!("packet socket: {}", std::io::Error::last_os_error());
    }
    let result = read_packets(fd, duration);
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    result
}

fn read_packets(fd: i32, duration: Duration) -> anyhow::Result<Vec<RtpPacket>> {
    let lo = std::ffi::CString::new("lo")?;
    // SAFETY: a valid C string.
    let index = unsafe { libc::if_nametoindex(lo.as_ptr()) };
    if index == 0 {
        bail!("no lo interface");
    }
    // SAFETY: zeroed sockaddr_ll is valid; fields set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = eth_p_all();
    addr.sll_ifindex = index as i32;
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 200_000,
    };
    // SAFETY: pointers to live locals of the right sizes.
    unsafe {
        if libc::bind(
            fd,
            &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        ) != 0
        {
            bail!("bind to lo: {}", std::io::Error::last_os_error());
        }
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &timeout as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let size: libc::c_int = 16 << 20;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        );
    }
    let mut packets = Vec::new();
    let mut buf = vec![0u8; 65536];
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: buffers are live and sized as passed.
        let n = unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
                &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                &mut from_len,
            )
        };
        if n <= 0 {
            continue;
        }
        if from.sll_pkttype == libc::PACKET_OUTGOING {
            continue;
        }
        let mut stamp = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: SIOCGSTAMPNS fills a timespec with the last packet's receive time (its first
        // call turns timestamping on, so the very first packet has none).
        let at_ns = if unsafe { libc::ioctl(fd, SIOCGSTAMPNS as _, &mut stamp) } == 0 {
            stamp.tv_sec as u64 * 1_000_000_000 + stamp.tv_nsec as u64
        } else {
            continue;
        };
        if let Some(p) = udp_rtp(at_ns, &buf[..n as usize]) {
            packets.push(p);
        }
    }
    Ok(packets)
}

/// Ethernet (lo's all-zero header) + IPv4 + UDP -> RTP.
fn udp_rtp(at_ns: u64, frame: &[u8]) -> Option<RtpPacket> {
    let ip = frame.get(14..)?;
    if u16::from_be_bytes([frame[12], frame[13]]) != 0x0800 || ip.first()? >> 4 != 4 {
        return None;
    }
    if *ip.get(9)? != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let udp = ip.get(ihl..)?;
    let src = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let dst = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    RtpPacket::parse(at_ns, src, dst, udp.get(8..)?)
}
