//! The per-instance firewall: an nftables table inside the instance's network namespace that
//! acts like a cloud security group.
//!
//! New inbound connections are dropped (the client times out, as with a real security group)
//! unless they come from loopback or a member of the cluster, or go to port 22 or an opened port.
//! Outbound traffic and replies are free. Every change replaces the whole table in one nft
//! transaction, so the rules are never half-applied; established connections survive because
//! conntrack, not the table, remembers them. Root inside the instance could flush the table:
//! this is an emulation, not a security boundary.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The TCP ports opened with `open_ports`, as sorted, disjoint, non-adjacent inclusive ranges.
/// Port 22 is always open and is not stored here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OpenPorts(Vec<(u16, u16)>);

impl OpenPorts {
    pub fn open(&mut self, first: u16, last: u16) {
        self.0.push((first.min(last), first.max(last)));
        self.normalize();
    }

    pub fn close(&mut self, first: u16, last: u16) {
        let (first, last) = (first.min(last), first.max(last));
        let mut kept = Vec::new();
        for &(a, b) in &self.0 {
            if b < first || a > last {
                kept.push((a, b));
                continue;
            }
            if a < first {
                kept.push((a, first - 1));
            }
            if b > last {
                kept.push((last + 1, b));
            }
        }
        self.0 = kept;
    }

    fn normalize(&mut self) {
        self.0.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::new();
        for &(a, b) in &self.0 {
            match merged.last_mut() {
                Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.0 = merged;
    }

    /// The nft set elements: these ranges plus port 22.
    fn elements(&self) -> String {
        let mut with_ssh = self.clone();
        with_ssh.open(22, 22);
        with_ssh
            .0
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The whole table, as an nft script that replaces any previous version atomically.
pub(crate) fn ruleset(open: &OpenPorts, peers: &[Ipv4Addr]) -> String {
    let peers_elements = if peers.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = peers.iter().map(Ipv4Addr::to_string).collect();
        format!(" elements = {{ {} }};", list.join(", "))
    };
    format!(
        "table inet aloft_fw {{}}\n\
         delete table inet aloft_fw\n\
         table inet aloft_fw {{\n\
         \x20 set tcp_open {{ type inet_service; flags interval; elements = {{ {open} }}; }}\n\
         \x20 set peers {{ type ipv4_addr;{peers_elements} }}\n\
         \x20 chain input {{\n\
         \x20   type filter hook input priority 0; policy drop;\n\
         \x20   ct state established,related accept\n\
         \x20   iif lo accept\n\
         \x20   meta l4proto {{ icmp, ipv6-icmp }} accept\n\
         \x20   ip saddr @peers accept\n\
         \x20   tcp dport @tcp_open accept\n\
         \x20 }}\n\
         }}\n",
        open = open.elements(),
    )
}

/// The partition table, as an nft script: with `isolated`, a second table that drops every
/// packet in and out except on loopback, established connections included, so peers and the
/// host see timeouts and the instance's processes keep running; without, no such table. Either
/// script replaces whatever was there, so both are idempotent. It is separate from `aloft_fw`
/// so that opening or closing ports never lifts a partition (a drop in either table is final).
/// ARP is not in the `inet` family, so the address still resolves and clients time out rather
/// than being told the host is unreachable.
pub(crate) fn partition_ruleset(isolated: bool) -> String {
    let mut script = String::from(
        "table inet aloft_partition {}\n\
         delete table inet aloft_partition\n",
    );
    if isolated {
        script.push_str(
            "table inet aloft_partition {\n\
             \x20 chain input {\n\
             \x20   type filter hook input priority -10; policy drop;\n\
             \x20   iif lo accept\n\
             \x20 }\n\
             \x20 chain output {\n\
             \x20   type filter hook output priority -10; policy drop;\n\
             \x20   oif lo accept\n\
             \x20 }\n\
             }\n",
        );
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(ops: &[(bool, u16, u16)]) -> Vec<(u16, u16)> {
        let mut open = OpenPorts::default();
        for &(is_open, first, last) in ops {
            if is_open {
                open.open(first, last);
            } else {
                open.close(first, last);
            }
        }
        open.0
    }

    #[test]
    fn port_arithmetic() {
        assert_eq!(ports(&[(true, 8080, 8080)]), [(8080, 8080)]);
        assert_eq!(
            ports(&[(true, 8080, 8089), (true, 8085, 8095)]),
            [(8080, 8095)]
        );
        assert_eq!(ports(&[(true, 10, 10), (true, 11, 12)]), [(10, 12)]);
        assert_eq!(
            ports(&[(true, 8080, 8089), (false, 8085, 8085)]),
            [(8080, 8084), (8086, 8089)]
        );
        assert_eq!(ports(&[(true, 8080, 8089), (false, 1, 9000)]), []);
        assert_eq!(ports(&[(false, 80, 80)]), []);
        assert_eq!(
            ports(&[(true, 0, 0), (true, 65535, 65535), (false, 0, 65535)]),
            []
        );
    }

    #[test]
    fn ruleset_always_opens_ssh() {
        let mut open = OpenPorts::default();
        open.open(20, 30);
        open.open(8080, 8080);
        let rules = ruleset(&open, &[Ipv4Addr::new(10, 0, 0, 2)]);
        assert!(rules.contains("elements = { 20-30, 8080 }"), "{rules}");
        assert!(rules.contains("elements = { 10.0.0.2 }"), "{rules}");
        let rules = ruleset(&OpenPorts::default(), &[]);
        assert!(rules.contains("elements = { 22 }"), "{rules}");
        assert!(rules.contains("set peers { type ipv4_addr; }"), "{rules}");
    }

    #[test]
    fn partition_replaces_its_own_table_only() {
        let isolate = partition_ruleset(true);
        let restore = partition_ruleset(false);
        assert!(isolate.starts_with(&restore), "{isolate}");
        assert!(isolate.contains("policy drop"), "{isolate}");
        assert!(!restore.contains("policy"), "{restore}");
        assert!(!isolate.contains("aloft_fw"), "{isolate}");
    }
}
