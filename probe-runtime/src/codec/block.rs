//! Messages encoded into a per-thread block: each is split off the block's front and shares it,
//! so a thread pays one allocation and one free per block instead of two per message (the
//! buffer and the header `Bytes` puts on a buffer with room to spare), and a message dropped on
//! another thread takes no allocator lock. Calls (client) and replies (server) are made here.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// The block a thread's messages are carved from, when the last one is used up.
const BLOCK: usize = 64 * 1024;

/// Room a message gets at least before it is encoded: a small one fits.
const SMALL: usize = 512;

/// Messages expected to be larger than this get a buffer of their own: a block should hold many.
const LARGEST: usize = BLOCK / 4;

thread_local! {
    /// Where this thread encodes messages; what is left of its current block.
    static ENCODE: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// What `write` appends to an empty buffer with room for `expected` bytes, carved from this
/// thread's block (a call's message or header frame, a reply). A message that outgrows the room
/// left still gets all it needs (the block's front is copied out once).
pub(crate) fn carve<E>(
    expected: usize,
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<Bytes, E> {
    if expected > LARGEST {
        return own(expected, write);
    }
    ENCODE.with(|cell| {
        // Re-entered (an `Encode` impl that makes a call): a buffer of its own.
        let Ok(mut buf) = cell.try_borrow_mut() else { return own(expected.max(SMALL), write) };
        if buf.capacity() < expected.max(SMALL) {
            *buf = BytesMut::with_capacity(BLOCK);
        }
        match write(&mut buf) {
            Ok(()) => Ok(buf.split().freeze()),
            Err(e) => {
                buf.clear();
                Err(e)
            }
        }
    })
}

/// What `write` appends to a buffer of its own with room for `expected` bytes.
fn own<E>(expected: usize, write: impl FnOnce(&mut BytesMut) -> Result<(), E>) -> Result<Bytes, E> {
    let mut buf = BytesMut::with_capacity(expected);
    write(&mut buf)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(n: usize, byte: u8) -> impl FnOnce(&mut BytesMut) -> Result<(), ()> {
        move |buf| {
            buf.extend_from_slice(&vec![byte; n]);
            Ok(())
        }
    }

    #[test]
    fn messages_carved_one_after_another_keep_their_own_bytes() {
        let a = carve(8, fill(100, 1)).unwrap();
        let b = carve(8, fill(3_000, 2)).unwrap();
        let c = carve(20_000, fill(20_000, 3)).unwrap();
        let d = carve(8, fill(70_000, 4)).unwrap();
        for (m, n, byte) in [(&a, 100, 1), (&b, 3_000, 2), (&c, 20_000, 3), (&d, 70_000, 4)] {
            assert_eq!(m.len(), n);
            assert!(m.iter().all(|&x| x == byte), "message of {n} bytes changed");
        }
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let failed = carve(8, |buf: &mut BytesMut| {
            buf.extend_from_slice(b"half a message");
            Err("too deep")
        });
        assert_eq!(failed, Err("too deep"));
        assert_eq!(&carve(8, fill(2, 7)).unwrap()[..], &[7, 7]);
    }

    #[test]
    fn a_write_that_carves_again_gets_a_buffer_of_its_own() {
        let outer = carve(8, |buf: &mut BytesMut| {
            let inner = carve(8, fill(5, 9))?;
            buf.extend_from_slice(&inner);
            buf.extend_from_slice(b"!");
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(&outer[..], &[9, 9, 9, 9, 9, b'!']);
    }
}
