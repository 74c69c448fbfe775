//! The attribute iterator and error-path resolution: `Attrs` over the input (first byte
//! skipped as a control byte), recursing into every attribute as a nest with every typed
//! accessor, then `DecodeError::resolve` of an error at an input-chosen offset against the
//! conntrack and cttimeout schemas.
#![no_main]

use ipvs_conntrack::conntrack::wire::{child_names, CTA_NAMES, CTA_TIMEOUT_NAMES};
use ipvs_conntrack::netlink::{Attr, Attrs};
use ipvs_conntrack::{AttrPath, DecodeError, DecodeErrorKind};
use libfuzzer_sys::fuzz_target;

fn walk(a: &Attr<'_>, depth: usize, budget: &mut usize) {
    if depth > 16 || *budget == 0 {
        return;
    }
    *budget -= 1;
    let _ = (
        a.u8(),
        a.be16(),
        a.be32(),
        a.be64(),
        a.ne16(),
        a.ne32(),
        a.ne64(),
    );
    let _ = (a.ipv4(), a.ipv6(), a.str());
    let raw = a.to_raw();
    assert_eq!(raw.value, a.value());
    for inner in a.nested(CTA_NAMES) {
        match inner {
            Ok(i) => walk(&i, depth + 1, budget),
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    let base = usize::from(ctl) * 4;
    let mut budget = 4096;
    let mut first_err = None;
    for a in Attrs::new(body, base, AttrPath::ROOT, CTA_NAMES) {
        match a {
            Ok(a) => {
                assert!(a.offset() >= base && a.offset() - base + a.value().len() <= body.len());
                walk(&a, 0, &mut budget);
            }
            Err(e) => first_err = Some(e),
        }
    }
    // Resolve errors at up to 64 offsets spread over the input (and the iterator's own
    // error) against both schemas.
    let step = (body.len() / 64).max(1);
    let mut errs: Vec<DecodeError> = (0..body.len())
        .step_by(step)
        .map(|o| DecodeError::new(DecodeErrorKind::InvalidValue, AttrPath::ROOT, base + o))
        .collect();
    errs.extend(first_err);
    for e in errs {
        let r = e.clone().resolve(body, base, CTA_NAMES, child_names);
        let _ = r.to_string();
        assert_eq!(r.offset, e.offset);
        let r = e.resolve(body, base, CTA_TIMEOUT_NAMES, child_names);
        let _ = r.to_string();
    }
});
