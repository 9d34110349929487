//! The live bench's SYN-ACK meter on the client's veth.

use aya::Ebpf;
use aya::maps::PerCpuArray;
use aya::programs::{Xdp, XdpMode};

use crate::XdpError;

/// `lab_count_synacks` attached to an interface: counts the SYN-ACKs arriving there and drops
/// them, passes everything else. Detached when dropped.
#[derive(Debug)]
pub struct SynAckMeter {
    ebpf: Ebpf,
}

impl SynAckMeter {
    /// Loads the meter and attaches it to `iface` (of the calling thread's network namespace),
    /// in the driver where it can, generic otherwise. The interface must have no XDP program.
    ///
    /// # Errors
    /// [`XdpError::Load`], [`XdpError::Program`] or [`XdpError::Attach`].
    pub fn attach(iface: &str) -> Result<SynAckMeter, XdpError> {
        let mut ebpf = Ebpf::load(crate::LAB_COUNT_OBJECT).map_err(XdpError::Load)?;
        let p: &mut Xdp = ebpf
            .program_mut("lab_count_synacks")
            .ok_or_else(|| XdpError::NoMap("lab_count_synacks".into()))?
            .try_into()
            .map_err(|source| XdpError::Program {
                what: "not an XDP program",
                source,
            })?;
        p.load().map_err(|source| XdpError::Program {
            what: "loading the SYN-ACK meter (verifier)",
            source,
        })?;
        let mut detail = Vec::new();
        for mode in [XdpMode::Driver, XdpMode::Skb] {
            match p.attach(iface, mode) {
                Ok(_) => return Ok(SynAckMeter { ebpf }),
                Err(e) => detail.push(format!("{mode:?}: {e}")),
            }
        }
        Err(XdpError::Attach {
            iface: iface.to_string(),
            detail: detail.join("; "),
        })
    }

    /// [`SynAckMeter::attach`] in network namespace `ns` (`/run/netns/NS`): the attachment
    /// stays with the interface, whichever namespace the caller is in.
    ///
    /// # Errors
    /// As [`SynAckMeter::attach`]; [`XdpError::Attach`] when the namespace cannot be entered.
    pub fn attach_in(ns: &str, iface: &str) -> Result<SynAckMeter, XdpError> {
        let path = format!("/run/netns/{ns}");
        let iface_owned = iface.to_string();
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd as _;
            let file = std::fs::File::open(&path).map_err(|e| XdpError::Attach {
                iface: iface_owned.clone(),
                detail: format!("{path}: {e}"),
            })?;
            // SAFETY: `file` is an open namespace file; setns changes only this thread.
            #[allow(unsafe_code)]
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if r != 0 {
                return Err(XdpError::Attach {
                    iface: iface_owned,
                    detail: format!("setns {path}: {}", std::io::Error::last_os_error()),
                });
            }
            SynAckMeter::attach(&iface_owned)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(XdpError::Attach {
                iface: iface.to_string(),
                detail: "the attaching thread panicked".into(),
            })
        })
    }

    /// SYN-ACKs counted so far.
    ///
    /// # Errors
    /// [`XdpError::Map`].
    pub fn count(&self) -> Result<u64, XdpError> {
        let map = self
            .ebpf
            .map("lab_synacks")
            .ok_or_else(|| XdpError::NoMap("lab_synacks".into()))?;
        let a: PerCpuArray<&aya::maps::MapData, u64> =
            PerCpuArray::try_from(map).map_err(|source| XdpError::Map {
                map: "lab_synacks".into(),
                source,
            })?;
        let v = a.get(&0, 0).map_err(|source| XdpError::Map {
            map: "lab_synacks".into(),
            source,
        })?;
        Ok(v.iter().sum())
    }
}
