//! The C layout of every struct: sizes pinned (tests/c/test_api.c asserts the same numbers
//! on the C side) and no implicit padding, so no uninitialized byte ever reaches C.

use std::mem::{offset_of, size_of, size_of_val, MaybeUninit};

use crate::addr::ipvsct_addr;
use crate::batch::{ipvsct_batch_report, ipvsct_batch_result};
use crate::capacity::{
    ipvsct_capacity, ipvsct_capacity_state, ipvsct_capacity_suggestion, ipvsct_capacity_trouble,
};
use crate::entry::{ipvsct_counters, ipvsct_ct_entry};
use crate::error::ipvsct_error;
use crate::events::{
    ipvsct_event, ipvsct_event_data, ipvsct_events_options, ipvsct_events_stats, ipvsct_overrun,
};
use crate::expect::ipvsct_ct_expect;
use crate::filter::ipvsct_dump_filter;
use crate::ipvs_types::*;
use crate::message::{ipvsct_genl_family, ipvsct_message, ipvsct_message_data};
use crate::request::ipvsct_ct_request;
use crate::stats::{ipvsct_ct_cpu_stats, ipvsct_ct_global_stats};
use crate::timeouts::{ipvsct_ct_timeout_policy, ipvsct_ct_timeouts};
use crate::tuple::ipvsct_tuple;

/// Asserts that the listed fields (all of them) fill the struct without padding.
macro_rules! assert_no_padding {
    ($t:ty, $($f:ident),+ $(,)?) => {{
        // SAFETY: these structs hold only integers, floats and arrays of them (and structs of
        // them), for which all-zero bytes are a valid value.
        let v: $t = unsafe { MaybeUninit::zeroed().assume_init() };
        let total = 0 $(+ size_of_val(&v.$f))+;
        assert_eq!(total, size_of::<$t>(), "{} has padding", stringify!($t));
    }};
}

#[test]
fn sizes_match_the_c_side() {
    assert_eq!(size_of::<ipvsct_addr>(), 20);
    assert_eq!(size_of::<ipvsct_tuple>(), 56);
    assert_eq!(size_of::<ipvsct_ct_entry>(), 352);
    assert_eq!(offset_of!(ipvsct_ct_entry, orig), 64);
    assert_eq!(offset_of!(ipvsct_ct_entry, fields), 232);
    assert_eq!(offset_of!(ipvsct_ct_entry, state_name), 305);
    assert_eq!(size_of::<ipvsct_ct_cpu_stats>(), 68);
    assert_eq!(size_of::<ipvsct_ct_global_stats>(), 16);
    assert_eq!(size_of::<ipvsct_ct_timeouts>(), 148);
    assert_eq!(size_of::<ipvsct_ct_timeout_policy>(), 108);
    assert_eq!(size_of::<ipvsct_dump_filter>(), 136);
    assert_eq!(size_of::<ipvsct_error>(), 920);
    assert_eq!(size_of::<ipvsct_message_data>(), 1280);
    assert_eq!(offset_of!(ipvsct_message, data), 24);
    assert_eq!(size_of::<ipvsct_ct_expect>(), 304);
    assert_eq!(size_of::<ipvsct_events_options>(), 20);
    assert_eq!(size_of::<ipvsct_overrun>(), 32);
    assert_eq!(size_of::<ipvsct_event_data>(), 384);
    assert_eq!(size_of::<ipvsct_event>(), 392);
    assert_eq!(offset_of!(ipvsct_event, data), 8);
    assert_eq!(size_of::<ipvsct_events_stats>(), 40);
    assert_eq!(size_of::<ipvsct_ct_request>(), 256);
    assert_eq!(offset_of!(ipvsct_ct_request, helper), 240);
    assert_eq!(size_of::<ipvsct_batch_result>(), 8);
    assert_eq!(size_of::<ipvsct_batch_report>(), 56);
    assert_eq!(size_of::<ipvsct_ipvs_stats64>(), 80);
    assert_eq!(size_of::<ipvsct_ipvs_service_key>(), 32);
    assert_eq!(size_of::<ipvsct_ipvs_service>(), 168);
    assert_eq!(size_of::<ipvsct_ipvs_dest>(), 152);
    assert_eq!(size_of::<ipvsct_ipvs_config>(), 16);
    assert_eq!(size_of::<ipvsct_ipvs_info>(), 12);
    assert_eq!(size_of::<ipvsct_ipvs_daemon>(), 56);
    assert_eq!(size_of::<ipvsct_ipvs_conn>(), 180);
    assert_eq!(size_of::<ipvsct_genl_family>(), 32);
    assert_eq!(size_of::<ipvsct_capacity_trouble>(), 32);
    assert_eq!(size_of::<ipvsct_capacity_state>(), 56);
    assert_eq!(size_of::<ipvsct_capacity_suggestion>(), 328);
    assert_eq!(size_of::<ipvsct_capacity>(), 5408);
    assert_eq!(offset_of!(ipvsct_capacity, fields), 176);
    assert_eq!(offset_of!(ipvsct_capacity, states), 256);
    assert_eq!(offset_of!(ipvsct_capacity, warnings), 3360);
}

#[test]
fn structs_have_no_padding() {
    assert_no_padding!(ipvsct_addr, family, reserved, addr);
    assert_no_padding!(
        ipvsct_tuple,
        src,
        dst,
        fields,
        src_port,
        dst_port,
        icmp_id,
        zone,
        proto,
        icmp_type,
        icmp_code,
        reserved
    );
    assert_no_padding!(ipvsct_counters, packets, bytes);
    assert_no_padding!(
        ipvsct_ct_entry,
        counters_orig,
        counters_reply,
        timestamp_start,
        timestamp_stop,
        dccp_handshake_seq,
        event_time,
        orig,
        reply,
        master,
        fields,
        status,
        timeout,
        state_timeout,
        mark,
        use_count,
        id,
        secmark,
        sctp_vtag_orig,
        sctp_vtag_reply,
        labels,
        zone,
        nlmsg_flags,
        res_id,
        family,
        msg_type,
        state_kind,
        state,
        tcp_wscale_orig,
        tcp_wscale_reply,
        tcp_flags_orig,
        tcp_flags_orig_mask,
        tcp_flags_reply,
        tcp_flags_reply_mask,
        dccp_role,
        state_name,
        helper,
        reserved
    );
    assert_no_padding!(
        ipvsct_ct_global_stats,
        entries,
        max_entries,
        fields,
        reserved
    );
    assert_no_padding!(
        ipvsct_ct_cpu_stats,
        fields,
        cpu,
        reserved,
        searched,
        found,
        created,
        invalid,
        ignore,
        deleted,
        delete_list,
        insert,
        insert_failed,
        drop,
        early_drop,
        error,
        search_restart,
        clash_resolve,
        chaintoolong
    );
    assert_no_padding!(
        ipvsct_ct_timeouts,
        source,
        tcp,
        udp,
        udplite,
        sctp,
        dccp,
        icmp,
        icmpv6,
        gre,
        generic
    );
    assert_no_padding!(
        ipvsct_ct_timeout_policy,
        values,
        use_count,
        fields,
        l3proto,
        l4proto,
        reserved,
        name
    );
    assert_no_padding!(
        ipvsct_dump_filter,
        orig,
        reply,
        fields,
        mark,
        mark_mask,
        status,
        status_mask,
        zone,
        family,
        table
    );
    assert_no_padding!(
        ipvsct_error,
        code,
        errno_value,
        fields,
        extack_offset,
        decode_offset,
        message,
        extack,
        attr_path
    );
    assert_no_padding!(
        ipvsct_message,
        kind,
        nlmsg_type,
        nlmsg_flags,
        nlmsg_seq,
        nlmsg_pid,
        offset,
        data
    );
    assert_no_padding!(
        ipvsct_ct_expect,
        master,
        tuple,
        mask,
        nat_tuple,
        fields,
        timeout,
        id,
        flags,
        class,
        nat_dir,
        zone,
        nlmsg_flags,
        family,
        msg_type,
        reserved,
        helper,
        expect_fn
    );
    assert_no_padding!(
        ipvsct_events_options,
        flags,
        rcvbuf,
        family,
        protocols_len,
        reserved,
        protocols
    );
    assert_no_padding!(ipvsct_overrun, failed_receives, total, since_ns, at_ns);
    assert_no_padding!(ipvsct_event, kind, reserved, data);
    assert_no_padding!(
        ipvsct_events_stats,
        received,
        filtered,
        other,
        overruns,
        table_entries
    );
    assert_no_padding!(
        ipvsct_ct_request,
        orig,
        reply,
        master,
        fields,
        timeout,
        status,
        mark,
        mark_mask,
        id,
        labels,
        labels_mask,
        zone,
        direction,
        tcp_state,
        tcp_wscale_orig,
        tcp_wscale_reply,
        tcp_flags_orig,
        tcp_flags_orig_mask,
        tcp_flags_reply,
        tcp_flags_reply_mask,
        reserved,
        helper
    );
    assert_no_padding!(ipvsct_batch_result, code, errno_value);
    assert_no_padding!(
        ipvsct_batch_report,
        requests,
        succeeded,
        failed,
        invalid,
        lost,
        datagrams,
        elapsed_ns
    );
    assert_no_padding!(
        ipvsct_ipvs_stats64,
        conns,
        inpkts,
        outpkts,
        inbytes,
        outbytes,
        cps,
        inpps,
        outpps,
        inbps,
        outbps
    );
    assert_no_padding!(
        ipvsct_ipvs_service_key,
        addr,
        fwmark,
        af,
        protocol,
        port,
        reserved
    );
    assert_no_padding!(
        ipvsct_ipvs_service,
        stats,
        key,
        fields,
        flags,
        flags_mask,
        timeout,
        netmask,
        reserved,
        scheduler,
        pe_name
    );
    assert_no_padding!(
        ipvsct_ipvs_dest,
        stats,
        addr,
        fields,
        fwd_method,
        weight,
        upper_threshold,
        lower_threshold,
        active_conns,
        inactive_conns,
        persist_conns,
        af,
        port,
        tun_port,
        tun_flags,
        tun_type,
        reserved
    );
    assert_no_padding!(ipvsct_ipvs_config, tcp, tcp_fin, udp, reserved);
    assert_no_padding!(
        ipvsct_ipvs_info,
        version,
        conn_tab_size,
        major,
        minor,
        patch,
        reserved
    );
    assert_no_padding!(
        ipvsct_ipvs_daemon,
        mcast_group,
        state,
        sync_id,
        fields,
        sync_maxlen,
        mcast_port,
        mcast_ttl,
        reserved,
        mcast_ifn
    );
    assert_no_padding!(
        ipvsct_ipvs_conn,
        client,
        vaddr,
        dest,
        fields,
        expires,
        state_timeout,
        protocol,
        client_port,
        vport,
        dest_port,
        state_kind,
        state,
        activity,
        origin,
        state_name,
        pe_name,
        pe_data
    );
    assert_no_padding!(
        ipvsct_genl_family,
        id,
        reserved,
        version,
        hdrsize,
        maxattr,
        name
    );
    assert_no_padding!(
        ipvsct_capacity_trouble,
        drop,
        early_drop,
        insert_failed,
        clash_resolve
    );
    assert_no_padding!(
        ipvsct_capacity_state,
        count,
        state_timeout,
        max_seconds_left,
        proto,
        state_name
    );
    assert_no_padding!(ipvsct_capacity_suggestion, value, setting, effect);
    assert_no_padding!(
        ipvsct_capacity,
        entries,
        max_entries,
        buckets,
        headroom_entries,
        fill_ratio,
        max_short_connections_per_second,
        new_per_second,
        growth_per_second,
        expected_occupancy,
        mean_seconds_in_table,
        headroom_per_second,
        seconds_until_full,
        interval_seconds,
        dominant_share,
        trouble,
        trouble_growth,
        fields,
        short_connection_dwell_seconds,
        rate_source,
        rate_is_lower_bound,
        states_len,
        states_total,
        warnings_len,
        warnings_total,
        suggestions_len,
        suggestions_total,
        dominant_proto,
        dominant_state,
        states,
        suggestions,
        warnings
    );
}
