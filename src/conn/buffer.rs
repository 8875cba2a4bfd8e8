//! Bounded input and output buffers: a `Vec<u8>` plus a read offset.
//!
//! Both start with no allocation, grow in 512-byte steps as data arrives, and
//! are released when they empty out, so an idle connection costs no buffer
//! memory however large its last burst was.

use std::io::{self, Read, Write};

/// Smallest read we ask the kernel for.
const READ_STEP: usize = 512;
/// Largest single read.
const MAX_READ: usize = 64 * 1024;
/// An emptied buffer keeps at most this much capacity.
const KEEP_CAPACITY: usize = 1024;

/// Result of draining a socket into or out of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// The socket is drained (it said WouldBlock, or a read came back short):
    /// wait for the next readiness event.
    WouldBlock,
    /// We stopped before WouldBlock (buffer full or nothing left to write).
    Stopped,
    /// End of stream (reads only).
    Eof,
}

#[derive(Debug, Default)]
pub struct InBuf {
    buf: Vec<u8>,
    start: usize,
}

impl InBuf {
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated (for the memory budget).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::new();
            }
        }
    }

    /// Read from `src` until it is drained, at EOF, or `cap` bytes are buffered.
    /// Returns the outcome and the number of bytes read.
    ///
    /// `until_eof`: the peer has hung up, so keep reading past a short read
    /// until the end of stream shows (its edge was already consumed).
    pub fn read_from(
        &mut self,
        src: &mut impl Read,
        cap: usize,
        until_eof: bool,
    ) -> io::Result<(Io, usize)> {
        let mut total = 0;
        loop {
            if self.len() >= cap {
                return Ok((Io::Stopped, total));
            }
            if self.start > 0 && self.buf.capacity() - self.buf.len() < READ_STEP {
                // Compact before growing: move the unparsed tail to the front.
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let old = self.buf.len();
            let spare = (self.buf.capacity() - old).max(READ_STEP);
            let chunk = spare.min(MAX_READ).min(cap - self.len());
            self.buf.resize(old + chunk, 0);
            match src.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    return Ok((Io::Eof, total));
                }
                Ok(n) => {
                    self.buf.truncate(old + n);
                    total += n;
                    if n < chunk && !until_eof {
                        // A short read emptied the socket's queue. With
                        // edge-triggered readiness, data arriving later raises
                        // a new event, so the extra read that would only say
                        // EAGAIN is skipped (one syscall less per request).
                        return Ok((Io::WouldBlock, total));
                    }
                }
                Err(e) => {
                    self.buf.truncate(old);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => return Ok((Io::WouldBlock, total)),
                        io::ErrorKind::Interrupted => continue,
                        _ => return Err(e),
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct OutBuf {
    buf: Vec<u8>,
    start: usize,
}

impl OutBuf {
    /// Bytes produced but not yet accepted by the socket.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// Bytes allocated (for the memory budget).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The buffer to append encoded replies to.
    pub fn vec(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The bytes not yet handed on.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Mark `n` bytes of `data()` as handed on (to rustls's writer); an
    /// emptied buffer is reset and, if large, released.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.reset();
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
    }

    /// Write to `dst` until WouldBlock or empty. Returns the outcome and bytes written.
    pub fn write_to(&mut self, dst: &mut impl Write) -> io::Result<(Io, usize)> {
        let mut total = 0;
        while self.start < self.buf.len() {
            match dst.write(&self.buf[self.start..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.start += n;
                    total += n;
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok((Io::WouldBlock, total)),
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                },
            }
        }
        self.reset();
        Ok((Io::Stopped, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that yields fixed chunks, then WouldBlock.
    struct Chunks(Vec<Vec<u8>>);
    impl Read for Chunks {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let Some(c) = self.0.first_mut() else {
                return Err(io::ErrorKind::WouldBlock.into());
            };
            let n = c.len().min(out.len());
            out[..n].copy_from_slice(&c[..n]);
            c.drain(..n);
            if c.is_empty() {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    #[test]
    fn reads_until_would_block_and_respects_cap() {
        let mut b = InBuf::default();
        let mut data = vec![1; 4000];
        data.extend_from_slice(&[2; 1000]);
        let mut src = Chunks(vec![data]);
        assert_eq!(
            b.read_from(&mut src, 4000, false).unwrap(),
            (Io::Stopped, 4000)
        );
        assert_eq!(b.data().len(), 4000);
        b.consume(4000);
        assert_eq!(b.buf.capacity(), 0, "an emptied large buffer is released");
        // The last read comes back short: the socket is drained, no EAGAIN read needed.
        assert_eq!(
            b.read_from(&mut src, 4000, false).unwrap(),
            (Io::WouldBlock, 1000)
        );
        assert_eq!(b.data(), &[2; 1000][..]);
        b.consume(600);
        assert_eq!(b.data(), &[2; 400][..]);
        b.consume(400);
        assert!(
            b.buf.capacity() <= KEEP_CAPACITY,
            "a small buffer may be kept"
        );
    }

    #[test]
    fn would_block_and_eof_are_reported() {
        let mut b = InBuf::default();
        let mut src = Chunks(Vec::new());
        assert_eq!(
            b.read_from(&mut src, 100, false).unwrap(),
            (Io::WouldBlock, 0)
        );
        let mut eof: &[u8] = b"";
        let mut tail: &[u8] = b"last";
        assert_eq!(b.read_from(&mut tail, 100, true).unwrap(), (Io::Eof, 4));
        b.consume(4);
        assert_eq!(b.read_from(&mut eof, 100, false).unwrap(), (Io::Eof, 0));
    }

    #[test]
    fn out_buf_drains_and_shrinks() {
        let mut o = OutBuf::default();
        o.extend(&[7; 5000]);
        let mut sink = Vec::new();
        assert_eq!(o.write_to(&mut sink).unwrap(), (Io::Stopped, 5000));
        assert!(o.is_empty());
        assert_eq!(o.buf.capacity(), 0);
    }
}
