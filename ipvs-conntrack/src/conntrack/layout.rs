//! A cache of entry layouts for dumps: entries whose attribute headers are exactly those
//! of an entry indexed before are indexed by comparing the headers, not by checking each
//! attribute again.
//!
//! A dump's entries come in few layouts (one per protocol, family and set of extensions),
//! and [`EntryView::parse_body`] spends most of a view dump's decoding time checking the
//! same header sequence again and again. Two bodies of the same length whose headers are
//! the same words at the same positions have the same attribute chain, so every check
//! gives the same answer and the index is the same: a hit returns the remembered index.

use crate::conntrack::entry::{EntryView, Family, MessageInfo};
use crate::conntrack::shape::Shape;
use crate::error::DecodeError;
use crate::netlink::attr::{align4, word_at, NLA_HDRLEN};

/// Layouts with more top-level attributes than this are not remembered.
const MAX_ATTRS: usize = 20;
/// Remembered layouts (direct-mapped by body length).
const WAYS: usize = 16;

/// One remembered layout: the header words and where they are, and the index they give.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Body length (0: this way is empty).
    body_len: u32,
    /// Number of headers.
    count: u8,
    /// Position / 4 and native-endian word of each header.
    headers: [(u16, u32); MAX_ATTRS],
    /// The index [`EntryView::parse_body`] built for this layout.
    index: crate::conntrack::entry::Index,
}

/// Remembered entry layouts of one dump or event stream (see the module documentation).
#[derive(Clone, Debug)]
pub struct LayoutCache {
    ways: [Option<Layout>; WAYS],
    /// The entry shape of each way's layout, made when an owned entry is first built.
    shapes: [ShapeSlot; WAYS],
    hits: u64,
    misses: u64,
}

/// The entry shape of one way's layout.
#[derive(Clone, Debug, Default)]
enum ShapeSlot {
    /// Not made yet.
    #[default]
    Untried,
    /// The layout has no shape (a part without the common form).
    None,
    /// The shape.
    Ready(Box<Shape>),
}

impl Default for LayoutCache {
    fn default() -> Self {
        LayoutCache {
            ways: [None; WAYS],
            shapes: Default::default(),
            hits: 0,
            misses: 0,
        }
    }
}

impl LayoutCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries indexed from a remembered layout so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Entries indexed by the full check so far.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Indexes an entry body like [`EntryView::parse_body`], from a remembered layout when
    /// its headers match one.
    #[inline]
    pub fn parse_body<'a>(
        &mut self,
        family: u8,
        message: MessageInfo,
        body: &'a [u8],
        offset: usize,
    ) -> Result<EntryView<'a>, DecodeError> {
        let way = (body.len() / 4) % WAYS;
        if let Some(l) = &self.ways[way] {
            let count = usize::from(l.count);
            if l.body_len as usize == body.len()
                && l.headers[..count]
                    .iter()
                    .all(|&(p, w)| word_at(body, usize::from(p) * 4) == w)
            {
                self.hits += 1;
                return Ok(EntryView::from_index(
                    Family::from(family),
                    message,
                    body,
                    offset,
                    l.index,
                ));
            }
        }
        self.misses += 1;
        let v = EntryView::parse_body(family, message, body, offset)?;
        self.ways[way] = remember(body, &v);
        self.shapes[way] = ShapeSlot::Untried;
        Ok(v)
    }

    /// [`LayoutCache::parse_body`], with the shape of the body's layout (made on first use)
    /// when the body has it: then an owned entry is built from values only. A body that
    /// matches a remembered shape is not compared again header by header.
    #[inline(always)]
    pub(crate) fn parse_shaped<'a>(
        &mut self,
        family: u8,
        message: MessageInfo,
        body: &'a [u8],
        offset: usize,
    ) -> Result<(EntryView<'a>, Option<&Shape>), DecodeError> {
        let way = (body.len() / 4) % WAYS;
        // A shape is made from its way's layout and covers every top-level header.
        let hit = match (&self.shapes[way], &self.ways[way]) {
            (ShapeSlot::Ready(s), Some(l)) if s.matches(body) => Some(l.index),
            _ => None,
        };
        if let Some(index) = hit {
            self.hits += 1;
            let shape = match &self.shapes[way] {
                ShapeSlot::Ready(s) => Some(&**s),
                _ => None,
            };
            let v = EntryView::from_index(Family::from(family), message, body, offset, index);
            return Ok((v, shape));
        }
        self.parse_unshaped(family, message, body, offset)
    }

    /// The way of `body` if the body matches that way's shape (counted as a hit): then its
    /// values are read from the shape ([`LayoutCache::shape`]) without building a view.
    #[inline(always)]
    pub(crate) fn shape_hit(&mut self, body: &[u8]) -> Option<usize> {
        let way = (body.len() / 4) % WAYS;
        // A shape is made from its way's layout and covers every top-level header.
        let hit = matches!(
            (&self.shapes[way], &self.ways[way]),
            (ShapeSlot::Ready(s), Some(_)) if s.matches(body)
        );
        if !hit {
            return None;
        }
        self.hits += 1;
        Some(way)
    }

    /// The shape of way `way`, if it has one.
    #[inline(always)]
    pub(crate) fn shape(&self, way: usize) -> Option<&Shape> {
        match self.shapes.get(way) {
            Some(ShapeSlot::Ready(s)) => Some(s),
            _ => None,
        }
    }

    /// [`LayoutCache::parse_shaped`] for views: the view alone, built once, in place (a
    /// tuple with the shape would be taken apart again, a copy that stalls on the stores
    /// that built it).
    #[inline(always)]
    pub(crate) fn parse_view<'a>(
        &mut self,
        family: u8,
        message: MessageInfo,
        body: &'a [u8],
        offset: usize,
    ) -> Result<EntryView<'a>, DecodeError> {
        let way = (body.len() / 4) % WAYS;
        if let (ShapeSlot::Ready(s), Some(l)) = (&self.shapes[way], &self.ways[way]) {
            if s.matches(body) {
                self.hits += 1;
                let v = EntryView::from_index(Family::from(family), message, body, offset, l.index);
                return Ok(v.with_known(s.known()));
            }
        }
        self.parse_unshaped(family, message, body, offset)
            .map(|(v, _)| v)
    }

    /// [`LayoutCache::parse_shaped`] for a body that does not match its way's shape.
    #[inline(never)]
    fn parse_unshaped<'a>(
        &mut self,
        family: u8,
        message: MessageInfo,
        body: &'a [u8],
        offset: usize,
    ) -> Result<(EntryView<'a>, Option<&Shape>), DecodeError> {
        let way = (body.len() / 4) % WAYS;
        let hits = self.hits;
        let v = self.parse_body(family, message, body, offset)?;
        // A shape is made once the layout repeats (a remembered layout was hit), so that a
        // buffer of one or two entries (an event datagram) does not pay for it.
        if self.hits > hits && matches!(self.shapes[way], ShapeSlot::Untried) {
            // Only for the layout this way remembers, so that a shape always belongs to it.
            let ours = matches!(&self.ways[way], Some(l) if l.index == v.index()
                && l.body_len as usize == body.len());
            if ours {
                self.shapes[way] = match Shape::of(&v) {
                    Some(s) => ShapeSlot::Ready(Box::new(s)),
                    None => ShapeSlot::None,
                };
            }
        }
        let shape = match &self.shapes[way] {
            ShapeSlot::Ready(s) if s.matches(body) => Some(&**s),
            _ => None,
        };
        let v = v.with_known(shape.map(|s| s.known()).unwrap_or_default());
        Ok((v, shape))
    }
}

/// The layout of a body that indexed without error, if it is small enough to remember.
#[cold]
fn remember(body: &[u8], v: &EntryView<'_>) -> Option<Layout> {
    let mut headers = [(0u16, 0u32); MAX_ATTRS];
    let mut count = 0;
    let mut pos = 0;
    while pos + NLA_HDRLEN <= body.len() {
        let word = word_at(body, pos);
        let len = usize::from(u16::from_ne_bytes([body[pos], body[pos + 1]]));
        if len < NLA_HDRLEN {
            return None;
        }
        *headers.get_mut(count)? = (u16::try_from(pos / 4).ok()?, word);
        count += 1;
        pos += align4(len);
    }
    Some(Layout {
        body_len: u32::try_from(body.len()).ok()?,
        count: u8::try_from(count).ok()?,
        headers,
        index: v.index(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::conntrack::test_bodies::info;

    /// Entry bodies (after nfgenmsg) of a recorded dump (kernel 6.18, `dump_all.bin`).
    fn recorded_bodies() -> Vec<Vec<u8>> {
        let data = include_bytes!("../../../tests/fixtures/dump_all.bin");
        crate::conntrack::test_bodies::bodies(data)
            .into_iter()
            .map(|(_, b)| b)
            .collect()
    }

    /// The cached and the uncached index of `body`, which must agree.
    fn check(cache: &mut LayoutCache, body: &[u8]) {
        let cached = cache.parse_body(2, info(), body, 20).map(|v| v.index());
        let plain = EntryView::parse_body(2, info(), body, 20).map(|v| v.index());
        assert_eq!(cached, plain, "layout cache disagrees on {body:02x?}");
    }

    #[test]
    fn repeated_layouts_hit_and_agree() {
        let bodies = recorded_bodies();
        assert!(bodies.len() >= 10);
        let mut cache = LayoutCache::new();
        for _ in 0..3 {
            for b in &bodies {
                check(&mut cache, b);
            }
        }
        assert!(cache.hits() >= bodies.len() as u64, "hits {}", cache.hits());
    }

    proptest! {
        /// Mutated bodies after real ones: the cache must never return an index the full
        /// check would not (same length, different headers; same headers, new values).
        #[test]
        fn cache_agrees_with_full_check(
            picks in proptest::collection::vec(
                (any::<usize>(), proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3)),
                1..40,
            ),
        ) {
            let bodies = recorded_bodies();
            let mut cache = LayoutCache::new();
            for (pick, flips) in picks {
                let mut b = bodies[pick % bodies.len()].clone();
                check(&mut cache, &b);
                for (at, x) in flips {
                    let i = at % b.len();
                    b[i] = x;
                }
                check(&mut cache, &b);
            }
        }
    }
}
