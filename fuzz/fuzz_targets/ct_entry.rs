//! Conntrack entries: every frame of the input through `EntryView::from_frame`, every
//! accessor of the view, `to_owned`, and the dump filter; then the input twice over through
//! the layout cache and entry shapes (`EntryViews`, `EntryViews::owned`), which must agree
//! with the uncached decoders. Seeds: tests/fixtures/dump_*.bin, get_*.bin.
#![no_main]

use ipvs_conntrack::conntrack::{
    DumpFilter, Entry, EntryView, EntryViews, Family, Status, Tuple, TupleView,
};
use ipvs_conntrack::netlink::Frames;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let filters = [
        DumpFilter::all(),
        DumpFilter::all()
            .family(Family::Ipv4)
            .mark(42, 0xff)
            .zone(7)
            .status(Status::ASSURED, Status::ASSURED),
    ];
    // Frames stops after its first error: bounded by the input length.
    for frame in Frames::new(data) {
        let Ok(frame) = frame else { break };
        let _ = frame.control("fuzz");
        let view = match EntryView::from_frame(&frame) {
            Ok(v) => v,
            Err(e) => {
                // Error paths must render and point inside the input.
                let _ = e.to_string();
                assert!(
                    e.offset <= data.len(),
                    "offset {} past {}",
                    e.offset,
                    data.len()
                );
                continue;
            }
        };
        // Scalars are checked by from_frame; nests decode on access (each a decoder).
        let _ = (view.family(), view.message(), view.timeout(), view.status());
        let _ = (view.mark(), view.mark_mask(), view.use_count(), view.id());
        let _ = (
            view.secmark(),
            view.status_mask(),
            view.zone(),
            view.event_time(),
        );
        let _ = (view.labels(), view.labels_mask(), view.label_bits().count());
        let _ = view.unknown();
        let nests_ok = [
            view.orig().map(|_| ()),
            view.reply().map(|_| ()),
            view.master().map(|_| ()),
            view.protoinfo().map(|_| ()),
            view.counters_orig().map(|_| ()),
            view.counters_reply().map(|_| ()),
            view.timestamp().map(|_| ()),
            view.seq_adj_orig().map(|_| ()),
            view.seq_adj_reply().map(|_| ()),
            view.synproxy().map(|_| ()),
            view.nat_src().map(|_| ()),
            view.nat_dst().map(|_| ()),
            view.secctx().map(|_| ()),
            view.helper().map(|_| ()),
            view.proto().map(|_| ()),
            view.state().map(|_| ()),
        ]
        .iter()
        .all(|r| r.is_ok());
        for t in [view.orig(), view.reply(), view.master()]
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = (
                t.src(),
                t.dst(),
                t.proto(),
                t.src_port(),
                t.zone(),
                t.unknown(),
            );
        }
        for f in &filters {
            let _ = f.matches(&view);
        }
        match view.to_owned() {
            Ok(owned) => {
                // The owned form decodes every nest: none of them may fail on its own.
                assert!(nests_ok, "to_owned succeeded but a nest accessor failed");
                // The owned decoder is the view plus to_owned: both paths agree.
                let direct =
                    Entry::from_frame(&frame).expect("Entry::from_frame after a good view");
                assert_eq!(owned, direct);
                let _ = owned.seconds_since_refresh();
                let _ = owned.status.names().count();
                let _ = format!("{} {:?}", owned.state, owned.labels);
                if let Some(l) = &owned.labels {
                    let _ = l.to_bitmap();
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    cached_agrees(data);
});

/// The original tuple of a view, owned (for comparisons).
fn orig_of(v: &EntryView<'_>) -> Option<Option<Tuple>> {
    v.orig().ok().map(|t| t.map(|t: TupleView<'_>| t.to_owned()))
}

/// The input twice over (so the second copy meets a remembered layout and shape), decoded
/// through the layout cache, agrees entry by entry with the uncached decoders.
fn cached_agrees(data: &[u8]) {
    let twice = [data, data].concat();
    let mut plain = Vec::new();
    // Bounded by the input length; stops where `Frames` and `EntryViews` stop.
    for frame in Frames::new(&twice) {
        let Ok(frame) = frame else { break };
        if frame.header.message_type >= 16 {
            plain.push(frame);
        }
    }
    let views: Vec<_> = EntryViews::new(&twice).take(plain.len()).collect();
    let owned: Vec<_> = EntryViews::new(&twice).owned().take(plain.len()).collect();
    for ((frame, view), entry) in plain.iter().zip(&views).zip(&owned) {
        let checked = EntryView::from_frame(frame);
        assert_eq!(view.is_ok(), checked.is_ok(), "cached and plain views disagree");
        if let (Ok(v), Ok(c)) = (view, &checked) {
            assert_eq!(orig_of(v), orig_of(c));
            assert_eq!(v.proto(), c.proto());
            assert_eq!(v.state(), c.state());
            assert_eq!(v.timeout(), c.timeout());
        }
        match (entry, Entry::from_frame(frame)) {
            (Ok(a), Ok(b)) => assert_eq!(a, &b, "shaped and plain entries differ"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("owned results differ: {a:?} vs {b:?}"),
        }
    }
}
