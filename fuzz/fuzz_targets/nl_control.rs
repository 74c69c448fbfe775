//! Netlink framing and control messages: `Frames` over the input and `Frame::control` on
//! every frame (NLMSG_DONE status, NLMSG_ERROR with capped/uncapped request echo and
//! extended-ACK TLVs). Seeds: tests/fixtures/get_missing.bin, dump_bad_mark.bin and every
//! other recording (each ends in DONE or an ACK).
#![no_main]

use ipvs_conntrack::netlink::{Control, Frames};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut frames = Frames::new(data);
    let mut last = 0usize;
    while let Some(f) = frames.next() {
        match f {
            Ok(frame) => {
                assert!(frame.offset >= last && frame.offset < data.len());
                assert_eq!(frame.payload.len() + 16, frame.header.length as usize);
                last = frame.offset;
                let _ = (frame.is_multi(), frame.is_dump_interrupted());
                match frame.control("fuzz") {
                    Ok(Control::Error(k)) | Ok(Control::Done(Some(k))) => {
                        assert!(k.errno >= 0);
                        let _ = k.to_string();
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = e.to_string();
                        assert!(e.offset <= data.len());
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
                assert!(e.offset <= data.len());
            }
        }
        assert!(frames.position() <= data.len() + 3);
    }
});
