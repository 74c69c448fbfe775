//! Conntrack and expectation events: every frame of the input through `decode_event`,
//! without and with state timeouts to join. Seeds: tests/fixtures/dump_*.bin (entry
//! messages are event messages too) and the generated event seeds of examples/make_seeds.rs.
#![no_main]

use ipvs_conntrack::conntrack::events::decode_event;
use ipvs_conntrack::conntrack::timeout::from_sysctls;
use ipvs_conntrack::netlink::Frames;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let timeouts = from_sysctls(|_| Some(120));
    for frame in Frames::new(data) {
        let Ok(frame) = frame else { break };
        match decode_event(&frame, None) {
            Ok(ev) => {
                let _ = format!("{ev:?}");
                let joined = decode_event(&frame, Some(&timeouts)).expect("decodes twice");
                let _ = format!("{joined:?}");
            }
            Err(e) => {
                let _ = e.to_string();
                assert!(decode_event(&frame, Some(&timeouts)).is_err());
            }
        }
    }
});
