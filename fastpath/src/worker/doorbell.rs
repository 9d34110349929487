//! A worker's doorbell: how a worker that sleeps in an event loop learns that its queue has
//! work, without the queue threads ever waiting.
//!
//! The worker *arms* the bell, looks at its queue once more, and only then sleeps on the bell's
//! receiving socket. A queue thread that pushed an item rings the bell only when it is armed,
//! and disarms it in the same atomic step, so a busy worker costs the queue threads one relaxed
//! load per item and no system call; a sleeping one costs one non-blocking `send(2)` of one byte
//! for its first item. Both sides go through `SeqCst` operations, so an item pushed after the
//! worker's last look always finds the bell armed: no wakeup is lost.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};

/// A doorbell (see the module docs).
#[derive(Debug)]
pub struct Doorbell {
    armed: AtomicBool,
    tx: UnixDatagram,
    rx: UnixDatagram,
}

impl Doorbell {
    /// A new, disarmed doorbell.
    ///
    /// # Errors
    /// The socket pair cannot be made (file descriptor limit).
    pub fn new() -> io::Result<Doorbell> {
        let (tx, rx) = UnixDatagram::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Doorbell {
            armed: AtomicBool::new(false),
            tx,
            rx,
        })
    }

    /// Rings the bell if the worker armed it (queue threads, after a successful push).
    #[inline]
    pub fn ring(&self) {
        if self.armed.load(Ordering::SeqCst) && self.armed.swap(false, Ordering::SeqCst) {
            // A full socket buffer means the bell is ringing already.
            let _ = self.tx.send(&[1]);
        }
    }

    /// Arms the bell (the worker, before its last look at the queue and its sleep).
    #[inline]
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Disarms the bell (the worker found work after arming it).
    #[inline]
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    /// The receiving socket: readable when the bell rang (register it with an event loop).
    pub fn receiver(&self) -> &UnixDatagram {
        &self.rx
    }

    /// Empties the receiving socket after a wakeup.
    pub fn clear(&self) {
        let mut b = [0u8; 16];
        while self.rx.recv(&mut b).is_ok() {}
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn rings_only_when_armed() {
        let d = Doorbell::new().unwrap();
        let mut b = [0u8; 4];
        d.ring();
        assert!(d.receiver().recv(&mut b).is_err(), "not armed: no ring");
        d.arm();
        d.ring();
        d.ring();
        assert_eq!(d.receiver().recv(&mut b).unwrap(), 1);
        assert!(d.receiver().recv(&mut b).is_err(), "one ring per arming");
        d.arm();
        d.disarm();
        d.ring();
        d.clear();
        assert!(d.receiver().recv(&mut b).is_err());
    }
}
