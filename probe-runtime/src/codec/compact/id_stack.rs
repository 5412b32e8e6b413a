//! The stack of enclosing structs' last field ids, which compact field deltas are relative to.

/// How many levels live inline before the stack spills to the heap.
const INLINE: usize = 16;

/// A stack of `i16` that does not allocate for the first [`INLINE`] levels, so writing or reading
/// a message of ordinary nesting makes no allocation for it.
#[derive(Debug, Clone, Default)]
pub(super) struct IdStack {
    inline: [i16; INLINE],
    len: usize,
    spill: Vec<i16>,
}

impl IdStack {
    #[inline]
    pub(super) fn push(&mut self, id: i16) {
        if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = id;
        } else {
            self.spill.push(id);
        }
        self.len += 1;
    }

    /// Pops the last id; an unbalanced pop returns 0, the id a struct starts from.
    #[inline]
    pub(super) fn pop(&mut self) -> i16 {
        if self.len == 0 {
            return 0;
        }
        self.len -= 1;
        match self.inline.get(self.len) {
            Some(&id) => id,
            None => self.spill.pop().unwrap_or(0),
        }
    }

    /// Forgets every level (a new message starts).
    #[inline]
    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.spill.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_and_pops_past_the_inline_part() {
        let mut s = IdStack::default();
        for i in 0..40 {
            s.push(i);
        }
        for i in (0..40).rev() {
            assert_eq!(s.pop(), i);
        }
        assert_eq!(s.pop(), 0);
        s.push(3);
        s.clear();
        assert_eq!(s.pop(), 0);
    }
}
