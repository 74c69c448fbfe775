//! Entry bodies of recorded kernel dumps, for the decoders' unit tests.

use crate::conntrack::entry::MessageInfo;
use crate::netlink::frame::Frames;
use crate::netlink::nfnetlink::NFGENMSG_LEN;

/// (family, body after `nfgenmsg`) of each entry message of a recording.
pub(crate) fn bodies(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    Frames::new(data)
        .flatten()
        .filter(|f| f.header.message_type >= 16 && f.payload.len() > NFGENMSG_LEN)
        .map(|f| (f.payload[0], f.payload[NFGENMSG_LEN..].to_vec()))
        .collect()
}

/// The message facts of a dumped entry (IPCTNL_MSG_CT_NEW, NLM_F_MULTI).
pub(crate) fn info() -> MessageInfo {
    MessageInfo {
        msg: 0,
        flags: 2,
        res_id: 0,
    }
}
