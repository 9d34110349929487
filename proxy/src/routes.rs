//! The edge prefixes as local routes (AnyIP): `ip route add local PREFIX dev lo`, so that the
//! kernel takes the handed-off sockets' addresses as its own, added when the fast path starts
//! and removed when it stops, exactly what it added and nothing else.
//!
//! - Routes go into the `local` table with a protocol number of our own
//!   ([`RTPROT_FASTPATH`]), through rtnetlink (no `ip` binary needed).
//! - A route that exists already (the operator's) is left alone and not recorded.
//! - What was added is recorded in a state file under `/run/fastpath/`, named after the
//!   network namespace (its inode) and the interface. A fast path that crashed (`kill -9`) left
//!   the file behind; the next start removes those routes first ([`LocalRoutes::recover`]).
//! - [`LocalRoutes::sync`] follows configuration changes (a prefix onboarded or removed).
#![allow(unsafe_code)]

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use ipnet::IpNet;

/// The `rtm_protocol` of the routes the fast path adds (user-defined range, above the
/// numbers iproute2 names in `/etc/iproute2/rt_protos`).
pub const RTPROT_FASTPATH: u8 = 0xf5;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const RT_TABLE_LOCAL: u8 = 255;
const RTN_LOCAL: u8 = 2;
const RT_SCOPE_HOST: u8 = 254;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_TABLE: u16 = 15;

/// Why a route could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A netlink call failed.
    #[error("{what} local route {prefix} dev lo: {source}")]
    Netlink {
        /// `adding` or `removing`.
        what: &'static str,
        /// The prefix.
        prefix: IpNet,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The netlink socket or the loopback device could not be opened.
    #[error("rtnetlink: {0}")]
    Socket(#[source] io::Error),
    /// The state file could not be written.
    #[error("cannot write the route state file {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

struct Netlink {
    fd: OwnedFd,
    seq: u32,
    lo: u32,
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

impl Netlink {
    fn open() -> io::Result<Netlink> {
        let fd = crate::repair::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
        // SAFETY: the name is a NUL-terminated C string.
        let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
        if lo == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Netlink { fd, seq: 1, lo })
    }

    /// Sends one route request and waits for its acknowledgment.
    fn route(&mut self, new: bool, p: IpNet) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let (family, addr): (u8, Vec<u8>) = match p {
            IpNet::V4(v) => (libc::AF_INET as u8, v.network().octets().to_vec()),
            IpNet::V6(v) => (libc::AF_INET6 as u8, v.network().octets().to_vec()),
        };
        let flags = NLM_F_REQUEST | NLM_F_ACK | if new { NLM_F_CREATE | NLM_F_EXCL } else { 0 };
        let mut m = Vec::with_capacity(64);
        m.extend_from_slice(&0u32.to_ne_bytes()); // length, set below
        m.extend_from_slice(&(if new { RTM_NEWROUTE } else { RTM_DELROUTE }).to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
        // struct rtmsg
        m.extend_from_slice(&[
            family,
            p.prefix_len(),
            0, // src_len
            0, // tos
            RT_TABLE_LOCAL,
            RTPROT_FASTPATH,
            RT_SCOPE_HOST,
            RTN_LOCAL,
        ]);
        m.extend_from_slice(&0u32.to_ne_bytes()); // rtm_flags
        push_attr(&mut m, RTA_DST, &addr);
        push_attr(&mut m, RTA_OIF, &self.lo.to_ne_bytes());
        push_attr(&mut m, RTA_TABLE, &u32::from(RT_TABLE_LOCAL).to_ne_bytes());
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        // SAFETY: an all-zero sockaddr_nl is the kernel's address (pid 0, no groups).
        let mut sa: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `m` is a live buffer; `sa` a valid netlink address.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                m.as_ptr().cast(),
                m.len(),
                0,
                (&raw const sa).cast(),
                core::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 4096];
        for _ in 0..100 {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&raw mut pfd, 1, 2000) } <= 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no answer from rtnetlink",
                ));
            }
            // SAFETY: `buf` is a live, writable buffer of its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut at = 0usize;
            let n = n as usize;
            while at + 16 <= n {
                let mlen =
                    u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or_default()) as usize;
                let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
                let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap_or_default());
                if mlen < 16 || at + mlen > n {
                    break;
                }
                if kind == NLMSG_ERROR && seq == self.seq && mlen >= 20 {
                    let err =
                        i32::from_ne_bytes(buf[at + 16..at + 20].try_into().unwrap_or_default());
                    return if err == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-err))
                    };
                }
                at += (mlen + 3) & !3;
            }
        }
        Err(io::Error::other("no acknowledgment from rtnetlink"))
    }
}

/// The state file of the routes a fast path serving `iface` in this network namespace added.
fn state_path(iface: &str) -> PathBuf {
    let ns = std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap_or(0);
    PathBuf::from(format!("/run/fastpath/routes-netns{ns}-{iface}"))
}

/// The local routes one fast path added (removed when dropped).
#[derive(Debug)]
pub struct LocalRoutes {
    iface: String,
    added: BTreeSet<IpNet>,
    skipped: BTreeSet<IpNet>,
    state: PathBuf,
}

impl core::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Netlink").field("lo", &self.lo).finish()
    }
}

impl LocalRoutes {
    /// Removes the routes a previous fast path on `iface` in this namespace recorded and did
    /// not remove (it crashed), then makes `prefixes` local. Returns the routes and the stale
    /// ones it removed.
    ///
    /// # Errors
    /// [`RouteError`]: no `CAP_NET_ADMIN`, or a route the kernel refuses. Whatever was added
    /// before the failure is removed again.
    pub fn install(
        iface: &str,
        prefixes: &[IpNet],
    ) -> Result<(LocalRoutes, Vec<IpNet>), RouteError> {
        let stale = LocalRoutes::recover(iface)?;
        let mut r = LocalRoutes {
            iface: iface.to_string(),
            added: BTreeSet::new(),
            skipped: BTreeSet::new(),
            state: state_path(iface),
        };
        r.sync(prefixes)?;
        Ok((r, stale))
    }

    /// Removes the routes recorded by a fast path on `iface` that did not stop cleanly.
    ///
    /// # Errors
    /// [`RouteError::Socket`] when rtnetlink cannot be opened.
    pub fn recover(iface: &str) -> Result<Vec<IpNet>, RouteError> {
        let path = state_path(iface);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(Vec::new());
        };
        let mut nl = Netlink::open().map_err(RouteError::Socket)?;
        let mut removed = Vec::new();
        for p in text.lines().filter_map(|l| l.trim().parse::<IpNet>().ok()) {
            // Only a route with our protocol number matches the request.
            if nl.route(false, p).is_ok() {
                removed.push(p);
            }
        }
        let _ = std::fs::remove_file(&path);
        Ok(removed)
    }

    /// The routes added now.
    pub fn added(&self) -> impl Iterator<Item = &IpNet> {
        self.added.iter()
    }

    /// Makes exactly `prefixes` (of those this fast path added) local: adds the new ones,
    /// removes the ones no longer wanted.
    ///
    /// # Errors
    /// [`RouteError`]; on failure the routes are as before the call.
    pub fn sync(&mut self, prefixes: &[IpNet]) -> Result<(), RouteError> {
        let want: BTreeSet<IpNet> = prefixes.iter().map(IpNet::trunc).collect();
        let mut nl = Netlink::open().map_err(RouteError::Socket)?;
        let mut new = Vec::new();
        for p in want.iter().filter(|p| !self.added.contains(p)) {
            match nl.route(true, *p) {
                Ok(()) => new.push(*p),
                // The operator's route: theirs to keep.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                // IPv6 is disabled in this namespace: its prefixes cannot be served anyway.
                Err(e) if p.addr().is_ipv6() && e.raw_os_error() == Some(libc::EACCES) => {
                    if self.skipped.insert(*p) {
                        tracing::warn!(
                            "IPv6 is disabled here (net.ipv6.conf.all.disable_ipv6): the prefix {p} is not made local and its handoffs will fail"
                        );
                    }
                }
                Err(source) => {
                    for q in &new {
                        let _ = nl.route(false, *q);
                    }
                    return Err(RouteError::Netlink {
                        what: "adding",
                        prefix: *p,
                        source,
                    });
                }
            }
        }
        self.added.extend(new);
        // Record before removing anything, so a crash in between leaves nothing unrecorded.
        self.write_state()?;
        let gone: Vec<IpNet> = self
            .added
            .iter()
            .filter(|p| !want.contains(p))
            .copied()
            .collect();
        for p in gone {
            let _ = nl.route(false, p);
            self.added.remove(&p);
        }
        self.write_state()
    }

    fn write_state(&self) -> Result<(), RouteError> {
        let err = |source| RouteError::State {
            path: self.state.clone(),
            source,
        };
        if self.added.is_empty() {
            return match std::fs::remove_file(&self.state) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(err(e)),
                _ => Ok(()),
            };
        }
        if let Some(dir) = self.state.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let text: String = self.added.iter().map(|p| format!("{p}\n")).collect();
        let tmp = self.state.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, &self.state).map_err(err)
    }

    /// Removes every route this fast path added.
    pub fn remove_all(&mut self) {
        if let Ok(mut nl) = Netlink::open() {
            for p in std::mem::take(&mut self.added) {
                let _ = nl.route(false, p);
            }
        }
        let _ = std::fs::remove_file(&self.state);
        let _ = &self.iface;
    }
}

impl Drop for LocalRoutes {
    fn drop(&mut self) {
        self.remove_all();
    }
}
