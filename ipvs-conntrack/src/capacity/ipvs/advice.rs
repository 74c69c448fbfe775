//! Warnings, notes and suggestions of the IPVS model: why TIME_WAIT cannot be shortened,
//! what the table costs, and `ipvsadm --set` / `conn_tab_bits` changes with their
//! computed effect.

use super::{human_bytes, IpvsReport, IpvsSuggestion};

/// FIN_WAIT timeout suggested when FIN_WAIT entries sit in the table, seconds.
pub const SUGGESTED_TCPFIN: u32 = 30;
/// UDP timeout suggested when UDP entries sit in the table, seconds.
pub const SUGGESTED_UDP: u32 = 60;
/// Mean hash-chain length above which a larger connection table is suggested.
pub const CHAIN_WARN: f64 = 8.0;
/// Mean hash-chain length a suggested `conn_tab_bits` aims at.
pub const CHAIN_TARGET: f64 = 4.0;
/// Smallest `conn_tab_bits` the kernel accepts.
pub const CONN_TAB_BITS_MIN: u32 = 8;
/// Largest `conn_tab_bits` the kernel accepts on 64-bit machines (it also caps it by memory).
pub const CONN_TAB_BITS_MAX: u32 = 27;
/// Bytes of one hash bucket (a list head) of the connection table on 64-bit machines.
pub const BUCKET_BYTES: u64 = 8;
/// Share of the machine's memory above which the expected IPVS entries raise a warning.
pub const MEMORY_WARN_SHARE: f64 = 0.25;

impl IpvsReport {
    /// Fills warnings, notes and suggestions from the computed numbers.
    pub(super) fn advise(&mut self) {
        let tw = self.time_wait_seconds;
        let size = self.conn_tab_size.max(1);
        let t = self.timeouts;
        let cur = |v: Option<u32>| v.map_or_else(|| "0".to_owned(), |v| v.to_string());

        // TIME_WAIT: the one timeout operators ask about, and the one they cannot set.
        let tw_now = self
            .timeout_use
            .iter()
            .find(|u| u.name == "time_wait")
            .map_or(0, |u| u.entries);
        let mut note = format!(
            "TIME_WAIT lasts {tw} s in IPVS and cannot be changed: `ipvsadm --set` sets only \
             tcp (ESTABLISHED), tcpfin (FIN_WAIT) and udp. {tw_now} entries are in TIME_WAIT now."
        );
        if let (Some(r), Some(e)) = (self.new_per_second, self.expected_inactive) {
            note.push_str(&format!(
                " At the measured {r:.1} new connections/s, expect about {e:.0} InActConn \
                 ({r:.1}/s x {tw} s, Little's law)"
            ));
            if let Some(m) = self.expected_memory_bytes {
                note.push_str(&format!(", {} of kernel memory", human_bytes(m)));
            }
            note.push_str(&format!(
                "; reusing connections (HTTP keep-alive) divides that by the requests per \
                 connection: {:.0} at 10 requests per connection.",
                e / 10.0
            ));
        }
        self.notes.push(note);
        let mut table_note = format!(
            "The connection table has no maximum: {} hash buckets (conn_tab_bits {}) whose chains \
             grow with the entries, so the limit is memory",
            self.conn_tab_size,
            self.conn_tab_bits
                .map_or_else(|| "?".to_owned(), |b| b.to_string())
        );
        if let Some(b) = self.entry_bytes {
            table_note.push_str(&format!(" ({b} bytes per entry)"));
        }
        let on = self.settings.defense_enabled();
        if on.is_empty() {
            table_note.push_str(
                "; the memory defense strategies (drop_entry, drop_packet, secure_tcp) are off.",
            );
        } else {
            table_note.push_str(&format!(
                "; memory defense on: {} (acts when free memory falls below amemthresh = {} pages).",
                on.join(", "),
                self.settings
                    .amemthresh
                    .map_or_else(|| "?".to_owned(), |v| v.to_string())
            ));
        }
        self.notes.push(table_note);

        // Warnings.
        if let Some(c) = self.expected_mean_chain.filter(|c| *c > CHAIN_WARN) {
            self.warnings.push(format!(
                "at the measured rate the table would hold {:.0} entries on {} buckets: {c:.1} \
                 entries per hash chain, every packet walks such a chain",
                self.expected_inactive.unwrap_or(0.0),
                self.conn_tab_size
            ));
        } else if self.mean_chain > CHAIN_WARN {
            self.warnings.push(format!(
                "{} entries on {} buckets: {:.1} entries per hash chain",
                self.entries, self.conn_tab_size, self.mean_chain
            ));
        }
        if let (Some(m), Some(total)) = (self.expected_memory_bytes, self.mem_total_bytes) {
            if m > total as f64 * MEMORY_WARN_SHARE {
                self.warnings.push(format!(
                    "the expected entries would take {} ({:.0}% of the machine's {})",
                    human_bytes(m),
                    m / total as f64 * 100.0,
                    human_bytes(total as f64)
                ));
            }
        }
        if self.settings.run_estimation == Some(0) {
            self.warnings.push(
                "run_estimation is 0: the kernel does not update the counters, so no rate can be \
                 measured from them"
                    .into(),
            );
        }
        if self.rate_is_lower_bound {
            self.warnings.push(
                "a counter was zeroed during the interval: the rate leaves that service out".into(),
            );
        }

        // Suggestions: the settable timeouts whose entries sit in the table now.
        let fin = self
            .timeout_use
            .iter()
            .find(|u| u.name == "tcpfin")
            .cloned();
        if let Some(u) = fin.filter(|u| u.entries > 0 && u.seconds > SUGGESTED_TCPFIN) {
            let after = u.entries as f64 * f64::from(SUGGESTED_TCPFIN) / f64::from(u.seconds);
            self.suggestions.push(IpvsSuggestion {
                setting: "tcpfin".into(),
                value: u64::from(SUGGESTED_TCPFIN),
                command: format!(
                    "ipvsadm --set {} {SUGGESTED_TCPFIN} {}",
                    cur(t.tcp),
                    cur(t.udp)
                ),
                effect: format!(
                    "FIN_WAIT entries stay {SUGGESTED_TCPFIN} s instead of {} s: about {after:.0} \
                     instead of {} at the same rate (Little's law); half-closed connections idle \
                     longer than {SUGGESTED_TCPFIN} s lose their IPVS entry",
                    u.seconds, u.entries
                ),
            });
        }
        let udp = self.timeout_use.iter().find(|u| u.name == "udp").cloned();
        if let Some(u) = udp.filter(|u| u.entries > 0 && u.seconds > SUGGESTED_UDP) {
            let after = u.entries as f64 * f64::from(SUGGESTED_UDP) / f64::from(u.seconds);
            self.suggestions.push(IpvsSuggestion {
                setting: "udp".into(),
                value: u64::from(SUGGESTED_UDP),
                command: format!(
                    "ipvsadm --set {} {} {SUGGESTED_UDP}",
                    cur(t.tcp),
                    cur(t.tcp_fin)
                ),
                effect: format!(
                    "UDP entries stay {SUGGESTED_UDP} s instead of {} s: about {after:.0} instead \
                     of {} at the same rate (Little's law); a UDP flow silent for more than \
                     {SUGGESTED_UDP} s may be sent to another real server",
                    u.seconds, u.entries
                ),
            });
        }
        // A bigger hash table when the chains get long.
        let need = self
            .expected_inactive
            .unwrap_or(0.0)
            .max(self.entries as f64);
        if need / f64::from(size) > CHAIN_WARN {
            let bits = (need / CHAIN_TARGET)
                .log2()
                .ceil()
                .clamp(f64::from(CONN_TAB_BITS_MIN), f64::from(CONN_TAB_BITS_MAX))
                as u32;
            let new_size = 1u64 << bits;
            self.suggestions.push(IpvsSuggestion {
                setting: "conn_tab_bits".into(),
                value: u64::from(bits),
                command: format!(
                    "echo 'options ip_vs conn_tab_bits={bits}' > /etc/modprobe.d/ip_vs.conf  \
                     (takes effect when ip_vs is loaded again, which removes every service)"
                ),
                effect: format!(
                    "{need:.0} entries on {new_size} buckets: {:.1} per hash chain instead of \
                     {:.1}; the bucket array takes {}",
                    need / new_size as f64,
                    need / f64::from(size),
                    human_bytes((new_size * BUCKET_BYTES) as f64)
                ),
            });
        }
    }
}
