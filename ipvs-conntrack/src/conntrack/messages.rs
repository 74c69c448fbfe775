//! Offline decoding of recorded ctnetlink bytes: the entry messages of a buffer of whole
//! netlink messages (a recorded dump, event stream or capture payload), as views.

use crate::conntrack::client::DumpStep;
use crate::conntrack::entry::{Entry, EntryView};
use crate::conntrack::layout::LayoutCache;
use crate::conntrack::shape::ShapedEntry;
use crate::conntrack::timeout::StateTimeouts;
use crate::error::DecodeError;
use crate::netlink::frame::{Frame, Frames};
use crate::netlink::read_ahead::ReadAhead;

/// Netlink message types below this are control messages (NLMSG_MIN_TYPE).
const NLMSG_MIN_TYPE: u16 = 16;

/// The entry messages of a buffer of netlink messages, as checked zero-copy views, in
/// order; control messages (DONE, ERROR, NOOP, OVERRUN) are skipped.
///
/// Decodes through a [`LayoutCache`], as a live dump does. A malformed netlink header
/// ends the iteration after one `Err`; a malformed entry is one `Err` and the iteration
/// goes on with the next message.
///
/// With the `nightly-prefetch` feature (on a nightly compiler) it hints the bytes ahead of
/// the current message to the CPU ([`ReadAhead`]), for recordings larger than its caches.
#[derive(Clone, Debug)]
pub struct EntryViews<'a> {
    frames: Frames<'a>,
    buf: &'a [u8],
    ahead: ReadAhead,
    layouts: LayoutCache,
}

impl<'a> EntryViews<'a> {
    /// Iterates the entry messages of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        EntryViews {
            frames: Frames::new(buf),
            buf,
            ahead: ReadAhead::new(),
            layouts: LayoutCache::new(),
        }
    }

    /// Goes on with the messages of `buf`, keeping the layouts remembered so far (for a
    /// recording kept as one buffer per datagram, as a live dump receives it).
    pub fn next_buffer(&mut self, buf: &'a [u8]) {
        self.frames = Frames::new(buf);
        self.buf = buf;
        self.ahead = ReadAhead::new();
    }

    /// The next entry message (control messages skipped); with `AHEAD`, the bytes after it
    /// are hinted to the CPU ([`ReadAhead`]). The views read ahead; owned decoding is bound
    /// by its own work and measured no gain from it.
    #[inline(always)]
    fn next_frame<const AHEAD: bool>(&mut self) -> Option<Result<Frame<'a>, DecodeError>> {
        // Bounded by the number of messages in the buffer.
        loop {
            let frame = match self.frames.next()? {
                Ok(f) => f,
                Err(e) => return Some(Err(e)),
            };
            if AHEAD {
                self.ahead.advance(self.buf, frame.offset);
            }
            if frame.header.message_type >= NLMSG_MIN_TYPE {
                return Some(Ok(frame));
            }
        }
    }

    /// The layout cache's statistics so far (hits, misses).
    pub fn layout_stats(&self) -> (u64, u64) {
        (self.layouts.hits(), self.layouts.misses())
    }

    /// The next entry as [`Dump::next_step`] gives it: an entry of a common layout as a
    /// [`ShapedEntry`] to read values from, any other decoded (state timeouts joined from
    /// `timeouts`). The same entries and errors as [`EntryViews::owned`].
    ///
    /// [`Dump::next_step`]: crate::conntrack::Dump::next_step
    /// [`ShapedEntry`]: crate::conntrack::ShapedEntry
    #[inline]
    pub fn next_step<'s>(
        &'s mut self,
        timeouts: Option<&'s StateTimeouts>,
    ) -> Option<Result<DumpStep<'s>, DecodeError>> {
        let frame = match self.next_frame::<false>()? {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        match EntryView::from_frame_shaped(&frame, &mut self.layouts) {
            Ok((v, Some(shape))) => {
                Some(Ok(DumpStep::Shaped(ShapedEntry::new(&v, shape, timeouts))))
            }
            Ok((v, None)) => v.build(timeouts).map(|r| r.map(DumpStep::Entry)),
            Err(e) => Some(Err(e)),
        }
    }

    /// The same messages as owned entries (`state_timeout` left `None`).
    pub fn owned(self) -> OwnedEntries<'a> {
        OwnedEntries { views: self }
    }
}

/// The entry messages of a buffer as owned entries: [`EntryViews::owned`].
#[derive(Clone, Debug)]
pub struct OwnedEntries<'a> {
    views: EntryViews<'a>,
}

impl<'a> OwnedEntries<'a> {
    /// Goes on with the messages of `buf`, keeping the remembered layouts and shapes
    /// ([`EntryViews::next_buffer`]).
    pub fn next_buffer(&mut self, buf: &'a [u8]) {
        self.views.next_buffer(buf);
    }
}

impl Iterator for OwnedEntries<'_> {
    type Item = Result<Entry, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let frame = match self.views.next_frame::<false>()? {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        // Built straight into the returned value (an `Entry` is large).
        match EntryView::from_frame_shaped(&frame, &mut self.views.layouts) {
            Ok((v, Some(shape))) => shape.build(&v, None),
            Ok((v, None)) => build_general(&v),
            Err(e) => Some(Err(e)),
        }
    }
}

/// The owned entry of a view without a shape (out of line: the shaped path writes its
/// entry in place).
#[inline(never)]
fn build_general(v: &EntryView<'_>) -> Option<Result<Entry, DecodeError>> {
    v.build(None)
}

impl<'a> Iterator for EntryViews<'a> {
    type Item = Result<EntryView<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let frame = match self.next_frame::<true>()? {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        Some(EntryView::from_frame_cached(&frame, &mut self.layouts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_dump_views_match_plain_decoding() {
        let data = include_bytes!("../../../tests/fixtures/dump_all.bin");
        let plain: Vec<Entry> = Frames::new(data)
            .flatten()
            .filter(|f| f.header.message_type >= NLMSG_MIN_TYPE)
            .map(|f| Entry::from_frame(&f).unwrap())
            .collect();
        let views = EntryViews::new(data);
        let owned: Vec<Entry> = views.owned().collect::<Result<_, _>>().unwrap();
        assert_eq!(owned, plain);
        assert!(owned.len() >= 10);
        // One entry message a hundred times: indexed once, then from its remembered layout.
        let first = Frames::new(data)
            .flatten()
            .find(|f| f.header.message_type >= NLMSG_MIN_TYPE)
            .unwrap();
        let len = crate::netlink::attr::align4(first.header.length as usize);
        let one = &data[first.offset..first.offset + len];
        let hundred = one.repeat(100);
        let mut it = EntryViews::new(&hundred);
        assert!(it.by_ref().all(|v| v.is_ok()));
        assert_eq!(it.layout_stats(), (99, 1));
    }

    #[test]
    fn next_buffer_keeps_the_remembered_layouts() {
        let data = include_bytes!("../../../tests/fixtures/dump_all.bin");
        let frames: Vec<_> = Frames::new(data)
            .flatten()
            .filter(|f| f.header.message_type >= NLMSG_MIN_TYPE)
            .collect();
        let len = crate::netlink::attr::align4(frames[0].header.length as usize);
        let one = &data[frames[0].offset..frames[0].offset + len];
        let want = Entry::from_frame(&frames[0]).unwrap();
        let mut it = EntryViews::new(one);
        assert_eq!(it.next().unwrap().unwrap().to_owned().unwrap(), want);
        assert!(it.next().is_none());
        for round in 1..=3u64 {
            it.next_buffer(one);
            assert_eq!(it.next().unwrap().unwrap().to_owned().unwrap(), want);
            assert!(it.next().is_none());
            assert_eq!(it.layout_stats(), (round, 1));
        }
    }

    #[test]
    fn truncated_buffer_is_one_error() {
        let data = include_bytes!("../../../tests/fixtures/dump_all.bin");
        let cut = &data[..data.len() - 7];
        let items: Vec<_> = EntryViews::new(cut).collect();
        assert!(items.last().unwrap().is_err());
        assert_eq!(items.iter().filter(|r| r.is_err()).count(), 1);
    }
}
