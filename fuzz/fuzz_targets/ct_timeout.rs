//! cttimeout policies: every frame of the input through `TimeoutPolicy::from_frame`; a
//! decoded policy must emit and decode back to the same timeouts, and answer `for_state`
//! for every state. Seeds: tests/fixtures/policy_*.bin.
#![no_main]

use ipvs_conntrack::conntrack::protoinfo::{DccpState, SctpState, TcpState};
use ipvs_conntrack::conntrack::{State, StateTimeouts, TimeoutPolicy, TimeoutSource, UdpState};
use ipvs_conntrack::netlink::emit::MessageBuilder;
use ipvs_conntrack::netlink::Frames;
use libfuzzer_sys::fuzz_target;

fn states() -> Vec<State> {
    let mut v = vec![State::Icmp, State::Generic, State::Unknown];
    for n in 0..=15u8 {
        v.push(State::Tcp(TcpState::from(n)));
        v.push(State::Sctp(SctpState::from(n)));
        v.push(State::Dccp(DccpState::from(n)));
        v.push(State::Udp(UdpState::from(n)));
        v.push(State::Gre(UdpState::from(n)));
    }
    v
}

fuzz_target!(|data: &[u8]| {
    for frame in Frames::new(data) {
        let Ok(frame) = frame else { break };
        let _ = frame.control("fuzz");
        let p = match TimeoutPolicy::from_frame(&frame) {
            Ok(p) => p,
            Err(e) => {
                let _ = e.to_string();
                assert!(e.offset <= data.len());
                continue;
            }
        };
        let _ = p.timeouts.named_values();
        let mut all = StateTimeouts::empty(TimeoutSource::Cttimeout);
        all.set(&p.timeouts);
        for s in states() {
            let _ = all.for_state(p.l4proto, s);
        }
        // Emit the timeouts again as a cttimeout message and decode it: same values.
        let mut b = MessageBuilder::new(frame.header.message_type, 0);
        b.put_raw(&[2, 0, 0, 0]);
        b.put_u8(3, p.l4proto); // CTA_TIMEOUT_L4PROTO
        p.timeouts.emit(&mut b);
        let msg = b.finish();
        let again = Frames::new(&msg)
            .next()
            .expect("one frame")
            .expect("valid frame");
        let back = TimeoutPolicy::from_frame(&again).expect("re-decode of an emitted policy");
        assert_eq!(back.timeouts, p.timeouts);
        assert_eq!(back.l4proto, p.l4proto);
    }
});
