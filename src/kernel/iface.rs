//! Network interface lookup: index, link type, MAC and addresses, with errors naming the interface.
use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::Result;
use serde::Serialize;

use crate::error::input;

const ARPHRD_ETHER: u16 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Iface {
    pub name: String,
    pub index: u32,
    pub mac: String,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
}

impl Iface {
    /// Looks up an Ethernet interface of the current network namespace (its addresses are
    /// not read: see with_addresses).
    pub fn ethernet(name: &str) -> Result<Iface> {
        let index = index_of(name)?;
        let (hwtype, mac) = hw_addr(name)?;
        if hwtype != ARPHRD_ETHER {
            return Err(input(format!(
                "interface {name} is not Ethernet (link type {hwtype}): ebpf-cast switches \
                 Ethernet frames; pick an Ethernet, veth or tap interface (see `ip -d link show {name}`)"
            )));
        }
        Ok(Iface { name: name.to_string(), index, mac: format_mac(&mac), ipv4: vec![], ipv6: vec![] })
    }

    /// The same with its IP addresses, for display. Each call lists every address of the
    /// namespace, so a cast of 1024 outputs does not ask (it took 19 s to start).
    pub fn with_addresses(name: &str) -> Result<Iface> {
        let mut i = Iface::ethernet(name)?;
        (i.ipv4, i.ipv6) = addresses(name);
        Ok(i)
    }

    /// First IPv4 address, or "-" when it has none.
    pub fn ipv4_text(&self) -> String {
        self.ipv4.first().map_or_else(|| "-".to_string(), |a| a.to_string())
    }
}

/// Interface index, or an error that tells how to list the interfaces.
pub fn index_of(name: &str) -> Result<u32> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('/') {
        return Err(input(format!("'{name}' is not a valid interface name (1 to 15 characters, no '/')")));
    }
    nix::net::if_::if_nametoindex(name).map_err(|_| {
        input(format!("no interface named {name} in this network namespace; list them with `ip link`"))
    })
}

/// Interface name for an index, if it still exists.
pub fn name_of(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IFNAMSIZ];
    // SAFETY: buf holds IFNAMSIZ bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success if_indextoname wrote a NUL-terminated name into buf.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Packets each interface of this network namespace dropped on transmit (tx_dropped, as the
/// kernel's 32-bit link statistics: it wraps), by name. For a veth, a copy its peer refused: a
/// full backlog or ring, the peer down.
pub fn tx_dropped() -> std::collections::HashMap<String, u32> {
    let mut drops = std::collections::HashMap::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return drops;
    }
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: cur is an entry of the list getifaddrs returned.
        let a = unsafe { &*cur };
        let packet = !a.ifa_addr.is_null()
            // SAFETY: ifa_addr is non-null and points to a sockaddr.
            && i32::from(unsafe { (*a.ifa_addr).sa_family }) == libc::AF_PACKET;
        if packet && !a.ifa_data.is_null() {
            // SAFETY: for AF_PACKET entries ifa_data is the link's struct rtnl_link_stats, whose
            // eighth 32-bit field is tx_dropped; ifa_name is a NUL-terminated name.
            let (stats, name) = unsafe { (a.ifa_data as *const u32, std::ffi::CStr::from_ptr(a.ifa_name)) };
            // SAFETY: rtnl_link_stats holds at least 8 u32 fields.
            drops.insert(name.to_string_lossy().into_owned(), unsafe { stats.add(7).read_unaligned() });
        }
        cur = a.ifa_next;
    }
    // SAFETY: list came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    drops
}

/// Whether copies sent out of interface `index` wait in the CPU's input backlog: a veth whose
/// segmentation offload (TSO) is on hands its peer every frame that no local socket sent through
/// netif_rx, whatever the peer runs (veth_xmit: only with TSO off may its peer's NAPI take them).
/// Other devices queue elsewhere (a tap: its own ring).
pub fn copies_queue_on_backlog(index: u32) -> bool {
    const ETHTOOL_GDRVINFO: u32 = 3;
    const ETHTOOL_GTSO: u32 = 0x1e;
    let Some(name) = name_of(index) else { return false };
    // struct ethtool_drvinfo: cmd, then the driver's name in 32 bytes (196 bytes in all).
    let mut info = [0u32; 49];
    info[0] = ETHTOOL_GDRVINFO;
    if ioctl(&name, libc::SIOCETHTOOL, |req| req.ifr_ifru.ifru_data = info.as_mut_ptr().cast()).is_err() {
        return false;
    }
    // SAFETY: the array is 196 bytes; the driver name is bytes 4..36.
    let driver = unsafe { std::slice::from_raw_parts(info.as_ptr().cast::<u8>().add(4), 32) };
    if !driver.starts_with(b"veth\0") {
        return false;
    }
    // struct ethtool_value: cmd, data.
    let mut tso = [ETHTOOL_GTSO, 0];
    ioctl(&name, libc::SIOCETHTOOL, |req| req.ifr_ifru.ifru_data = tso.as_mut_ptr().cast()).is_ok()
        && tso[1] != 0
}

/// Runs the interface ioctl `request` on `name`, with the request's union set by `set`.
fn ioctl(
    name: &str,
    request: libc::c_ulong,
    set: impl FnOnce(&mut libc::ifreq),
) -> std::io::Result<libc::ifreq> {
    // SAFETY: a zeroed ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().take(libc::IFNAMSIZ - 1).zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    set(&mut req);
    // SAFETY: plain socket(2) call; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the request reads req.ifr_name and reads or writes what req.ifr_ifru points at,
    // which outlives the call.
    let rc = unsafe { libc::ioctl(fd, request, &mut req) };
    let err = std::io::Error::last_os_error();
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Err(err);
    }
    Ok(req)
}

/// Link type (ARPHRD_*) and hardware address, from SIOCGIFHWADDR.
fn hw_addr(name: &str) -> Result<(u16, [u8; 6])> {
    let req = ioctl(name, libc::SIOCGIFHWADDR, |_| {})
        .map_err(|err| input(format!("cannot read the link type of interface {name}: {err}")))?;
    // SAFETY: SIOCGIFHWADDR fills the hwaddr member of the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *dst = *src as u8;
    }
    Ok((sa.sa_family, mac))
}

fn addresses(name: &str) -> (Vec<Ipv4Addr>, Vec<Ipv6Addr>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs.filter(|a| a.interface_name == name) {
            let Some(addr) = a.address else { continue };
            if let Some(sin) = addr.as_sockaddr_in() {
                v4.push(sin.ip());
            } else if let Some(sin6) = addr.as_sockaddr_in6() {
                v6.push(sin6.ip());
            }
        }
    }
    (v4, v6)
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_lowercase_colon_separated() {
        assert_eq!(format_mac(&[0x18, 0x03, 0x73, 0xd4, 0x4d, 0x52]), "18:03:73:d4:4d:52");
    }

    #[test]
    fn invalid_names_are_input_errors() {
        for bad in ["", "a/b", "a-name-much-too-long"] {
            let err = index_of(bad).unwrap_err();
            assert!(err.to_string().contains("not a valid interface name"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_interface_names_the_fix() {
        let err = index_of("nosuchif0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no interface named nosuchif0 in this network namespace; list them with `ip link`"
        );
        assert_eq!(crate::error::exit_code(&err), 2);
    }
}
