//! Ethernet II header and 802.1Q / 802.1ad tags.

use super::{Error, Result, be16, put16};

/// Ethernet II header length (no tags).
pub const HEADER_LEN: usize = 14;
/// One VLAN tag (TPID is the ethertype slot before it; TCI + inner ethertype).
pub const VLAN_TAG_LEN: usize = 4;

/// Ethertypes we recognise.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q customer tag.
    pub const VLAN: u16 = 0x8100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1ad service tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag still seen on some switches.
    pub const QINQ_OLD: u16 = 0x9100;
    /// Values below this are 802.3 lengths, not ethertypes.
    pub const MIN_ETHERTYPE: u16 = 0x0600;
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
}

/// A view of an Ethernet II header at the start of a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps `buffer` after checking that it holds a whole Ethernet header.
    ///
    /// # Errors
    /// [`Error`] when the buffer is shorter than 14 bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error);
        }
        Ok(Frame { buffer })
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        m
    }

    /// Source MAC address.
    #[inline]
    pub fn src(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        m
    }

    /// The first ethertype (a TPID when the frame is tagged).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// The bytes after the untagged header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC.
    #[inline]
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac);
    }

    /// Sets the source MAC.
    #[inline]
    pub fn set_src(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac);
    }

    /// Sets the first ethertype.
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        put16(self.buffer.as_mut(), field::ETHERTYPE, t);
    }

    /// Swaps source and destination MAC addresses in place (for a reply).
    #[inline]
    pub fn swap_macs(&mut self) {
        let (d, s) = (self.dst(), self.src());
        self.set_dst(s);
        self.set_src(d);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    static FRAME: [u8; 14] = [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00];

    #[test]
    fn deconstruct() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst(), [0x02, 0, 0, 0, 0, 1]);
        assert_eq!(f.src(), [0x02, 0, 0, 0, 0, 2]);
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert!(f.payload().is_empty());
    }

    #[test]
    fn construct_and_swap() {
        let mut buf = [0u8; 14];
        let mut f = Frame::new_checked(&mut buf[..]).unwrap();
        f.set_dst([0x02, 0, 0, 0, 0, 1]);
        f.set_src([0x02, 0, 0, 0, 0, 2]);
        f.set_ethertype(ethertype::IPV4);
        assert_eq!(buf, FRAME);
        let mut f = Frame::new_checked(&mut buf[..]).unwrap();
        f.swap_macs();
        assert_eq!(f.dst(), [0x02, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn short_is_an_error() {
        assert_eq!(Frame::new_checked(&FRAME[..13]).unwrap_err(), Error);
    }
}
