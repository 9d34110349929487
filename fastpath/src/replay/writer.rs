//! Writing captures: classic pcap (nanosecond resolution) and pcapng with per-packet comments.
//! Both write Ethernet frames.

use std::io::{self, BufWriter, Write};

/// Writes a classic pcap with nanosecond timestamps (magic `a1b23c4d`, little-endian,
/// link type Ethernet, snaplen 262144).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: BufWriter<W>,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    ///
    /// # Errors
    /// I/O errors.
    pub fn new(w: W) -> io::Result<PcapWriter<W>> {
        let mut w = BufWriter::new(w);
        w.write_all(&0xa1b2_3c4du32.to_le_bytes())?;
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&4u16.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&262_144u32.to_le_bytes())?;
        w.write_all(&1u32.to_le_bytes())?;
        Ok(PcapWriter { w })
    }

    /// Writes one frame captured at `ts_ns`.
    ///
    /// # Errors
    /// I/O errors; a frame longer than 4 GiB.
    pub fn write(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let len =
            u32::try_from(frame.len()).map_err(|_| io::Error::other("frame too long for pcap"))?;
        self.w
            .write_all(&((ts_ns / 1_000_000_000) as u32).to_le_bytes())?;
        self.w
            .write_all(&((ts_ns % 1_000_000_000) as u32).to_le_bytes())?;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(frame)
    }

    /// Flushes everything written.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Writes a pcapng: one section, one Ethernet interface with nanosecond timestamps
/// (`if_tsresol` = 9), and Enhanced Packet Blocks with an optional `opt_comment`, which
/// Wireshark shows in the packet details (filter: `frame.comment`).
#[derive(Debug)]
pub struct PcapNgWriter<W: Write> {
    w: BufWriter<W>,
    scratch: Vec<u8>,
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the section header and the interface description.
    ///
    /// # Errors
    /// I/O errors.
    pub fn new(w: W) -> io::Result<PcapNgWriter<W>> {
        let mut w = BufWriter::new(w);
        // Section Header Block: type, length 28, byte-order magic, version 1.0, length unknown.
        let mut shb = Vec::with_capacity(28);
        shb.extend_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        w.write_all(&shb)?;
        // Interface Description Block: Ethernet, snaplen 0 (none), if_tsresol 9, end of options.
        let mut idb = Vec::with_capacity(32);
        idb.extend_from_slice(&1u32.to_le_bytes());
        idb.extend_from_slice(&32u32.to_le_bytes());
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        idb.extend_from_slice(&9u16.to_le_bytes());
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&[9, 0, 0, 0]);
        idb.extend_from_slice(&0u32.to_le_bytes());
        idb.extend_from_slice(&32u32.to_le_bytes());
        w.write_all(&idb)?;
        Ok(PcapNgWriter {
            w,
            scratch: Vec::new(),
        })
    }

    /// Writes one frame captured at `ts_ns`, with an optional comment.
    ///
    /// # Errors
    /// I/O errors; a frame or comment too long for a block.
    pub fn write(&mut self, ts_ns: u64, frame: &[u8], comment: Option<&str>) -> io::Result<()> {
        let too_long = || io::Error::other("frame or comment too long for pcapng");
        let cap = u32::try_from(frame.len()).map_err(|_| too_long())?;
        let opts_len = match comment {
            Some(c) => {
                u16::try_from(c.len()).map_err(|_| too_long())?;
                4 + pad4(c.len()) + 4
            }
            None => 0,
        };
        let total = 28 + pad4(frame.len()) + opts_len + 4;
        let total32 = u32::try_from(total).map_err(|_| too_long())?;
        let b = &mut self.scratch;
        b.clear();
        b.extend_from_slice(&6u32.to_le_bytes());
        b.extend_from_slice(&total32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        b.extend_from_slice(&cap.to_le_bytes());
        b.extend_from_slice(&cap.to_le_bytes());
        b.extend_from_slice(frame);
        b.resize(28 + pad4(frame.len()), 0);
        if let Some(c) = comment {
            b.extend_from_slice(&1u16.to_le_bytes());
            b.extend_from_slice(&(c.len() as u16).to_le_bytes());
            b.extend_from_slice(c.as_bytes());
            b.resize(b.len() + pad4(c.len()) - c.len(), 0);
            b.extend_from_slice(&0u32.to_le_bytes());
        }
        b.extend_from_slice(&total32.to_le_bytes());
        debug_assert_eq!(b.len(), total);
        self.w.write_all(b)
    }

    /// Flushes everything written.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}
