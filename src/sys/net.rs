//! Network links, addresses and routes over rtnetlink, in the calling
//! process's network namespace.
//!
//! A synchronous `netlink_sys::Socket` and one request at a time: the host
//! must stay single-threaded (no async runtime), and every request that
//! changes state waits for the kernel's ack so an error is reported by the
//! call that caused it. Requests that change state go through
//! [`ops::netlink`] so `--trace` logs them and `--plan` records them; the
//! read-only dumps (`links`, name lookups) do not.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

use super::ops;
use crate::error::{Context, Error, Result};

/// A network namespace to put a link in: a process's, or an open
/// namespace file (a handle, `/run/netns/NAME`, `/proc/PID/ns/net`).
#[derive(Clone, Copy, Debug)]
pub enum NetnsRef<'a> {
    /// The network namespace of this process.
    Pid(i32),
    /// An open network namespace file.
    Fd(BorrowedFd<'a>),
}

impl NetnsRef<'_> {
    fn attribute(self) -> LinkAttribute {
        match self {
            NetnsRef::Pid(p) => LinkAttribute::NetNsPid(p as u32),
            NetnsRef::Fd(fd) => LinkAttribute::NetNsFd(fd.as_raw_fd()),
        }
    }
    fn describe(self) -> String {
        match self {
            NetnsRef::Pid(p) => format!("pid {p}"),
            NetnsRef::Fd(fd) => format!("fd {}", fd.as_raw_fd()),
        }
    }
}

/// One link as [`links`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The interface name.
    pub name: String,
    /// The interface index.
    pub index: u32,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// The MTU.
    pub mtu: u32,
    /// The hardware address, where the link has one of 6 bytes.
    pub mac: Option<Vec<u8>>,
    /// Its addresses as `ADDR/PREFIX`, IPv4 first.
    pub addrs: Vec<String>,
}

/// An address with its prefix length: `10.0.0.1/24`, `fd00::1/64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Cidr> {
        let bad = || {
            Error::Invalid(format!(
                "'{s}' is not an address with a prefix length (like 10.0.0.1/24 or fd00::1/64)"
            ))
        };
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn family(a: IpAddr) -> AddressFamily {
    if a.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// A connected rtnetlink socket of this process's network namespace (the
/// namespace is fixed when the socket is made).
struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    fn open() -> std::io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Send one request and collect the answers: the messages of a dump
    /// (until NLMSG_DONE), or nothing for an acked request.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> std::io::Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if msg.header.sequence_number != self.seq {
                    continue; // an answer to an earlier request or a notification
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            // An ack: code 0.
                            None => Ok(out),
                            Some(c) => Err(std::io::Error::from_raw_os_error(-c.get())),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        if !dump {
                            // A get that is not a dump answers once.
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Perform a state-changing request through the door. Each request gets a
/// socket of its own: a socket stays in the network namespace it was made
/// in, and a recipe may `setns` between two calls.
fn change(what: impl Fn() -> String, msg: RouteNetlinkMessage, flags: u16) -> Result<()> {
    ops::netlink(
        || {
            let mut nl = Rtnl::open().map_err(io_errno)?;
            nl.request(msg, flags | NLM_F_ACK).map_err(io_errno)?;
            Ok(())
        },
        &what,
    )
    .op(what)
}

/// The kernel's limit on interface names: IFNAMSIZ (16) with the NUL.
pub const IFNAME_MAX: usize = 15;

/// Refuse a name the kernel would refuse (as `dev_valid_name` does), with
/// a message that says why: netlink answers a long one with ERANGE.
pub fn check_name(name: &str, op: impl Fn() -> String) -> Result<()> {
    let why = if name.is_empty() {
        "is empty".to_string()
    } else if name.len() > IFNAME_MAX {
        format!(
            "is longer than {IFNAME_MAX} bytes ({} bytes; the kernel's IFNAMSIZ)",
            name.len()
        )
    } else if name == "." || name == ".." {
        "may not be . or ..".to_string()
    } else if name.contains(['/', ':']) || name.contains(char::is_whitespace) {
        "may not contain '/', ':' or white space".to_string()
    } else {
        return Ok(());
    };
    Err(Error::Invalid(format!(
        "{}: interface name '{name}' {why}",
        op()
    )))
}

/// The index of interface `name`, or ENODEV. Under `--plan` an interface
/// that the recipe has not really made yet gets index 0.
pub fn index(name: &str, op: impl Fn() -> String) -> Result<u32> {
    check_name(name, &op)?;
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    let r = Rtnl::open()
        .and_then(|mut nl| nl.request(RouteNetlinkMessage::GetLink(msg), 0))
        .map_err(io_errno);
    match r {
        Ok(v) => match v.into_iter().next() {
            Some(RouteNetlinkMessage::NewLink(l)) => Ok(l.header.index),
            _ => Err(Error::sys(op(), Errno::ENODEV)),
        },
        Err(_) if ops::planning() => Ok(0),
        Err(e) => Err(Error::sys(op(), e)),
    }
}

fn set_flags(name: &str, up: bool) -> Result<()> {
    let verb = if up { "up" } else { "down" };
    let what = || format!("{verb} {name}");
    let idx = index(name, what)?;
    let mut msg = LinkMessage::default();
    msg.header.index = idx;
    msg.header.flags = if up {
        LinkFlags::Up
    } else {
        LinkFlags::empty()
    };
    msg.header.change_mask = LinkFlags::Up;
    change(what, RouteNetlinkMessage::SetLink(msg), 0)
}

/// Bring interface `name` up (`ip link set NAME up`).
pub fn up(name: &str) -> Result<()> {
    set_flags(name, true)
}

/// Bring interface `name` down.
pub fn down(name: &str) -> Result<()> {
    set_flags(name, false)
}

/// Create a veth pair `name` ↔ `peer`; with `peer_netns` the peer is made
/// directly in that network namespace (no window where it sits in ours).
pub fn veth(name: &str, peer: &str, peer_netns: Option<NetnsRef<'_>>) -> Result<()> {
    let what = || match peer_netns {
        Some(n) => format!("veth {name}/{peer} (peer in {})", n.describe()),
        None => format!("veth {name}/{peer}"),
    };
    check_name(name, what)?;
    check_name(peer, what)?;
    let mut peer_msg = LinkMessage::default();
    peer_msg
        .attributes
        .push(LinkAttribute::IfName(peer.to_string()));
    if let Some(n) = peer_netns {
        peer_msg.attributes.push(n.attribute());
    }
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
    ]));
    change(
        what,
        RouteNetlinkMessage::NewLink(msg),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// Move interface `name` into another network namespace
/// (`ip link set NAME netns …`).
pub fn move_to(name: &str, netns: NetnsRef<'_>) -> Result<()> {
    let what = || format!("move {name} to {}", netns.describe());
    let idx = index(name, what)?;
    let mut msg = LinkMessage::default();
    msg.header.index = idx;
    msg.attributes.push(netns.attribute());
    change(what, RouteNetlinkMessage::SetLink(msg), 0)
}

/// Delete interface `name` (for a veth pair, both ends go).
pub fn delete(name: &str) -> Result<()> {
    let what = || format!("delete {name}");
    let idx = index(name, what)?;
    let mut msg = LinkMessage::default();
    msg.header.index = idx;
    change(what, RouteNetlinkMessage::DelLink(msg), 0)
}

/// Add an address to interface `name` (`ip addr add CIDR dev NAME`).
/// IPv6 addresses skip duplicate address detection: in a namespace of our
/// own nobody else can hold the address, and a tentative address cannot be
/// bound for the second or so DAD takes, which recipes would trip over.
pub fn addr(name: &str, cidr: Cidr) -> Result<()> {
    let what = || format!("addr {cidr} on {name}");
    let msg = addr_message(name, cidr, &what)?;
    change(
        what,
        RouteNetlinkMessage::NewAddress(msg),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// Remove an address from interface `name` (`ip addr del CIDR dev NAME`).
pub fn addr_del(name: &str, cidr: Cidr) -> Result<()> {
    let what = || format!("delete addr {cidr} on {name}");
    let msg = addr_message(name, cidr, &what)?;
    change(what, RouteNetlinkMessage::DelAddress(msg), 0)
}

fn addr_message(name: &str, cidr: Cidr, what: &dyn Fn() -> String) -> Result<AddressMessage> {
    let idx = index(name, what)?;
    let mut msg = AddressMessage::default();
    msg.header.family = family(cidr.addr);
    msg.header.prefix_len = cidr.prefix;
    msg.header.index = idx;
    msg.header.scope = if cidr.addr.is_loopback() {
        AddressScope::Host
    } else {
        AddressScope::Universe
    };
    // Both, as iproute2 sends them: IFA_LOCAL is the address of the
    // interface, IFA_ADDRESS the peer's on point-to-point links.
    msg.attributes.push(AddressAttribute::Local(cidr.addr));
    msg.attributes.push(AddressAttribute::Address(cidr.addr));
    if cidr.addr.is_ipv6() {
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    Ok(msg)
}

/// Set the MTU and/or the hardware address of interface `name`
/// (`ip link set NAME mtu N address MAC`).
pub fn set_link(name: &str, mtu: Option<u32>, mac: Option<[u8; 6]>) -> Result<()> {
    let what = || {
        let mut s = format!("set {name}");
        if let Some(m) = mtu {
            s += &format!(" mtu {m}");
        }
        if let Some(a) = mac {
            s += &format!(" address {}", format_mac(&a));
        }
        s
    };
    let idx = index(name, what)?;
    let mut msg = LinkMessage::default();
    msg.header.index = idx;
    if let Some(m) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(m));
    }
    if let Some(a) = mac {
        msg.attributes.push(LinkAttribute::Address(a.to_vec()));
    }
    change(what, RouteNetlinkMessage::SetLink(msg), 0)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(a: &[u8]) -> String {
    a.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A MAC address written `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || {
        Error::Invalid(format!(
            "'{s}' is not a MAC address (like 02:00:00:00:00:01)"
        ))
    };
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

impl Cidr {
    /// The same prefix with the host bits cleared (`10.1.2.3/16` →
    /// `10.1.0.0/16`).
    pub fn network(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let m = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & m).into())
            }
            IpAddr::V6(a) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & m).into())
            }
        };
        Cidr {
            addr,
            prefix: self.prefix,
        }
    }
}

/// Where a route goes.
#[derive(Clone, Debug, Default)]
pub struct RouteSpec {
    /// The gateway.
    pub via: Option<IpAddr>,
    /// The outgoing interface.
    pub dev: Option<String>,
}

/// Add a route to `dest` (`None` for the default route) in the main table
/// (`ip route add DEST via GW dev DEV`).
pub fn route(dest: Option<Cidr>, spec: &RouteSpec) -> Result<()> {
    let (msg, what) = route_message(dest, spec, "")?;
    change(
        what,
        RouteNetlinkMessage::NewRoute(msg),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

/// Delete a route of the main table (`ip route del DEST [via GW] [dev DEV]`).
pub fn route_del(dest: Option<Cidr>, spec: &RouteSpec) -> Result<()> {
    let (msg, what) = route_message(dest, spec, "delete ")?;
    change(what, RouteNetlinkMessage::DelRoute(msg), 0)
}

fn route_message(
    dest: Option<Cidr>,
    spec: &RouteSpec,
    verb: &str,
) -> Result<(RouteMessage, impl Fn() -> String)> {
    let dest_s = dest.map_or("default".to_string(), |d| d.to_string());
    if let Some(d) = dest.filter(|d| d.network() != *d) {
        // The kernel says only EINVAL; ip says "Invalid prefix for given
        // prefix length".
        return Err(Error::Invalid(format!(
            "route {d}: the destination has host bits set; did you mean {}?",
            d.network()
        )));
    }
    let verb = verb.to_string();
    let spec_s = spec.clone();
    let what = move || {
        let mut s = format!("{verb}route {dest_s}");
        if let Some(v) = spec_s.via {
            s += &format!(" via {v}");
        }
        if let Some(d) = &spec_s.dev {
            s += &format!(" dev {d}");
        }
        s
    };
    let dest_s = dest.map_or("default".to_string(), |d| d.to_string());
    if spec.via.is_none() && spec.dev.is_none() {
        return Err(Error::Invalid(format!(
            "route {dest_s}: needs 'via' (a gateway) or 'dev' (an interface)"
        )));
    }
    let fam_addr = dest.map(|d| d.addr).or(spec.via);
    if let (Some(d), Some(v)) = (dest, spec.via) {
        if d.addr.is_ipv4() != v.is_ipv4() {
            return Err(Error::Invalid(format!(
                "route {dest_s}: gateway {v} is not of the same address family"
            )));
        }
    }
    let fam = fam_addr.map_or(AddressFamily::Inet, family);
    let mut msg = RouteMessage::default();
    msg.header.address_family = fam;
    msg.header.destination_prefix_length = dest.map_or(0, |d| d.prefix);
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    // What `ip route add` uses.
    msg.header.protocol = RouteProtocol::Boot;
    // Without a gateway the destination is directly on the link.
    msg.header.scope = if spec.via.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    msg.header.kind = RouteType::Unicast;
    if let Some(d) = dest {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(d.addr)));
    }
    if let Some(v) = spec.via {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(v)));
    }
    if let Some(dev) = &spec.dev {
        let idx = index(dev, &what)?;
        msg.attributes.push(RouteAttribute::Oif(idx));
    }
    Ok((msg, what))
}

/// The links of this network namespace with their addresses, by index.
pub fn links() -> Result<Vec<Link>> {
    let what = || "links".to_string();
    let mut nl = Rtnl::open().op(what)?;
    let mut out: Vec<Link> = Vec::new();
    for m in nl
        .request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )
        .op(what)?
    {
        let RouteNetlinkMessage::NewLink(l) = m else {
            continue;
        };
        let mut link = Link {
            name: String::new(),
            index: l.header.index,
            up: l.header.flags.contains(LinkFlags::Up),
            mtu: 0,
            mac: None,
            addrs: Vec::new(),
        };
        for a in l.attributes {
            match a {
                LinkAttribute::IfName(n) => link.name = n,
                LinkAttribute::Mtu(m) => link.mtu = m,
                LinkAttribute::Address(a) if a.len() == 6 => link.mac = Some(a),
                _ => {}
            }
        }
        out.push(link);
    }
    let mut addrs: Vec<(u32, Cidr)> = Vec::new();
    for m in nl
        .request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )
        .op(what)?
    {
        let RouteNetlinkMessage::NewAddress(a) = m else {
            continue;
        };
        // IFA_LOCAL is the interface's own address where both are given
        // (point-to-point links); otherwise IFA_ADDRESS.
        let mut local = None;
        let mut address = None;
        for attr in a.attributes {
            match attr {
                AddressAttribute::Local(ip) => local = Some(ip),
                AddressAttribute::Address(ip) => address = Some(ip),
                _ => {}
            }
        }
        if let Some(ip) = local.or(address) {
            addrs.push((
                a.header.index,
                Cidr {
                    addr: ip,
                    prefix: a.header.prefix_len,
                },
            ));
        }
    }
    addrs.sort_by_key(|(_, c)| c.addr.is_ipv6());
    for (idx, c) in addrs {
        if let Some(l) = out.iter_mut().find(|l| l.index == idx) {
            l.addrs.push(c.to_string());
        }
    }
    out.sort_by_key(|l| l.index);
    Ok(out)
}
