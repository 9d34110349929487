//! Packets carried to a worker, in buffers from a fixed pool.
//!
//! Live, a worker needs the bytes of what it is handed: the payload that rode on a validating
//! ACK (it goes into the new kernel socket's receive queue), a segment that arrived before that
//! socket existed (it is re-injected into the kernel), every UDP datagram (it is relayed). The
//! pipeline copies the IP packet (IP header to the end of the IP payload, link layer and padding
//! left out) into a [`Packet`] taken from a [`PacketPool`] made at start: no allocation on the
//! per-packet path. A packet goes back to its pool when dropped, on whichever thread.
//!
//! An empty pool is back-pressure like a full worker queue: the pipeline drops the frame as
//! `queue_full` and creates no flow state. The pool is sized to cover every worker queue, so it
//! only runs dry when the workers hold many packets themselves.
//!
//! In replay and the benchmarks there is no pool: the accounting workers only need lengths.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::stats::Counter;

/// A fixed set of equally sized packet buffers, shared by the queue threads (takers) and the
/// workers (whose dropped packets return here).
#[derive(Debug)]
pub struct PacketPool {
    free: ArrayQueue<Box<[u8]>>,
    buf_size: usize,
    /// Times a packet could not be carried because the pool was empty.
    pub exhausted: Counter,
    /// Times a packet could not be carried because it was larger than a buffer.
    pub too_large: Counter,
}

impl PacketPool {
    /// A pool of `count` buffers of `buf_size` bytes each, allocated now.
    pub fn new(count: usize, buf_size: usize) -> Arc<PacketPool> {
        let count = count.max(1);
        let free = ArrayQueue::new(count);
        for _ in 0..count {
            // Cannot fail: the queue holds exactly `count`.
            let _ = free.push(vec![0u8; buf_size].into_boxed_slice());
        }
        Arc::new(PacketPool {
            free,
            buf_size,
            exhausted: Counter::default(),
            too_large: Counter::default(),
        })
    }

    /// The size of each buffer.
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// Buffers in the pool now (the rest are carried or held by workers).
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Buffers in all.
    pub fn capacity(&self) -> usize {
        self.free.capacity()
    }

    /// Copies `ip` (an IP packet whose upper-layer header starts at `l4_off` and payload at
    /// `payload_off`) into a buffer of the pool. `None` when the pool is empty or the packet is
    /// larger than a buffer (both counted).
    #[inline]
    pub fn take(self: &Arc<Self>, ip: &[u8], l4_off: usize, payload_off: usize) -> Option<Packet> {
        if ip.len() > self.buf_size || payload_off > ip.len() || l4_off > payload_off {
            self.too_large.add(1);
            return None;
        }
        let Some(mut buf) = self.free.pop() else {
            self.exhausted.add(1);
            return None;
        };
        buf[..ip.len()].copy_from_slice(ip);
        Some(Packet {
            buf,
            len: ip.len() as u32,
            l4_off: l4_off as u32,
            payload_off: payload_off as u32,
            pool: Some(Arc::clone(self)),
        })
    }
}

/// One IP packet carried to a worker. Returns its buffer to its pool when dropped.
pub struct Packet {
    buf: Box<[u8]>,
    len: u32,
    l4_off: u32,
    payload_off: u32,
    pool: Option<Arc<PacketPool>>,
}

impl Packet {
    /// A packet outside any pool (tests, tools): allocates.
    pub fn detached(ip: &[u8], l4_off: usize, payload_off: usize) -> Packet {
        let payload_off = payload_off.min(ip.len());
        Packet {
            buf: ip.to_vec().into_boxed_slice(),
            len: ip.len() as u32,
            l4_off: l4_off.min(payload_off) as u32,
            payload_off: payload_off as u32,
            pool: None,
        }
    }

    /// The whole IP packet (IP header first).
    #[inline]
    pub fn ip(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The upper-layer (TCP or UDP) header and payload.
    #[inline]
    pub fn l4(&self) -> &[u8] {
        &self.buf[self.l4_off as usize..self.len as usize]
    }

    /// The upper-layer payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buf[self.payload_off as usize..self.len as usize]
    }

    /// True for an IPv6 packet.
    #[inline]
    pub fn is_v6(&self) -> bool {
        self.buf.first().is_some_and(|b| b >> 4 == 6)
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            // An empty boxed slice does not allocate.
            let buf = core::mem::take(&mut self.buf);
            // Cannot overflow: only buffers taken from this pool come back to it.
            let _ = pool.free.push(buf);
        }
    }
}

impl Clone for Packet {
    /// A detached copy (allocates; for tests and tools, never on the per-packet path).
    fn clone(&self) -> Packet {
        Packet::detached(self.ip(), self.l4_off as usize, self.payload_off as usize)
    }
}

impl PartialEq for Packet {
    fn eq(&self, o: &Packet) -> bool {
        self.ip() == o.ip() && self.l4_off == o.l4_off && self.payload_off == o.payload_off
    }
}

impl Eq for Packet {}

impl core::fmt::Debug for Packet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packet")
            .field("len", &self.len)
            .field("l4_off", &self.l4_off)
            .field("payload_off", &self.payload_off)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn packets_return_to_their_pool() {
        let pool = PacketPool::new(2, 64);
        let a = pool.take(&[0x45; 40], 20, 40).unwrap();
        let b = pool.take(&[0x60; 48], 40, 48).unwrap();
        assert!(pool.take(&[0x45; 20], 20, 20).is_none(), "empty");
        assert_eq!(pool.exhausted.get(), 1);
        assert_eq!((a.ip().len(), a.l4().len(), a.payload().len()), (40, 20, 0));
        assert!(b.is_v6() && !a.is_v6());
        drop(a);
        assert_eq!(pool.available(), 1);
        let moved = std::thread::spawn(move || drop(b));
        moved.join().unwrap();
        assert_eq!(pool.available(), 2, "dropped on another thread");
        assert!(
            pool.take(&[0; 65], 20, 20).is_none(),
            "larger than a buffer"
        );
        assert_eq!(pool.too_large.get(), 1);
    }

    #[test]
    fn a_clone_is_detached() {
        let pool = PacketPool::new(1, 64);
        let a = pool.take(&[1, 2, 3, 4], 2, 3).unwrap();
        let c = a.clone();
        assert_eq!(c, a);
        assert_eq!(c.payload(), &[4]);
        drop(a);
        drop(c);
        assert_eq!(pool.available(), 1, "the clone is not the pool's");
    }
}
