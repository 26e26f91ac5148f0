//! `net.*` that regorus lacks or answers differently from OPA (`topdown/cidr.go`,
//! `topdown/net.go`): `cidr_contains` (IPv4-mapped IPv6 addresses are IPv4, as in Go),
//! `cidr_intersects`, `cidr_contains_matches`, `cidr_merge`, and `lookup_ip_addr`, which
//! answers within a bounded time or not at all.

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use regorus::Value;

use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("net.cidr_contains", 2, cidr_contains),
    ("net.cidr_intersects", 2, cidr_intersects),
    ("net.cidr_contains_matches", 2, cidr_contains_matches),
    ("net.cidr_merge", 1, cidr_merge),
    ("net.lookup_ip_addr", 1, lookup_ip_addr),
];

/// An address as Go's `net.ParseIP` reads it: IPv4-mapped IPv6 addresses are IPv4.
fn parse_ip(text: &str) -> Option<IpAddr> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

/// A network: family width in bits, first address, prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    bits: u8,
    first: u128,
    prefix: u8,
}

fn as_u128(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(v4) => (32, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (128, u128::from(v6)),
    }
}

/// The low `n` bits set.
fn ones(n: u8) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// The network mask of a `prefix` within an address `bits` wide.
fn mask(bits: u8, prefix: u8) -> u128 {
    ones(bits) & !ones(bits.saturating_sub(prefix))
}

impl Net {
    /// Go's `net.ParseCIDR`, the address masked to its network.
    fn parse(text: &str) -> Result<Net, BuiltinError> {
        let invalid = || BuiltinError::invalid(format!("invalid CIDR address: {text}"));
        let (addr, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let (bits, ip) = as_u128(parse_ip(addr).ok_or_else(invalid)?);
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        if prefix > bits {
            return Err(invalid());
        }
        Ok(Net {
            bits,
            first: ip & mask(bits, prefix),
            prefix,
        })
    }

    fn last(&self) -> u128 {
        self.first | ones(self.bits - self.prefix)
    }

    fn contains(&self, bits: u8, ip: u128) -> bool {
        self.bits == bits && ip & mask(bits, self.prefix) == self.first
    }

    fn text(&self) -> String {
        let ip = if self.bits == 32 {
            IpAddr::V4(std::net::Ipv4Addr::from(self.first as u32))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(self.first))
        };
        format!("{ip}/{}", self.prefix)
    }
}

/// OPA's `net.cidr_contains`: `b` is an address or a network that must lie wholly in `a`.
fn contains(a: &str, b: &str) -> Result<bool, BuiltinError> {
    let net = Net::parse(a)?;
    if let Some(ip) = parse_ip(b) {
        let (bits, ip) = as_u128(ip);
        return Ok(net.contains(bits, ip));
    }
    let inner = Net::parse(b).map_err(|_| {
        BuiltinError::invalid(format!(
            "not a valid textual representation of an IP address or CIDR: {b}"
        ))
    })?;
    Ok(net.contains(inner.bits, inner.first) && net.contains(inner.bits, inner.last()))
}

pub(super) fn cidr_contains(args: &[Value]) -> Result<Value, BuiltinError> {
    let a = args::string(args, 0)?;
    let b = args::string(args, 1)?;
    Ok(Value::from(contains(a, b)?))
}

fn cidr_intersects(args: &[Value]) -> Result<Value, BuiltinError> {
    let a = Net::parse(args::string(args, 0)?)?;
    let b = Net::parse(args::string(args, 1)?)?;
    Ok(Value::from(
        a.contains(b.bits, b.first) || b.contains(a.bits, a.first),
    ))
}

/// The (address text, key) pairs of a `cidr_contains_matches` operand: a string is its own
/// key; array elements are keyed by index, set elements by themselves, object values by key.
/// An element is a string or an array whose first item is the string.
fn match_terms(position: usize, value: &Value) -> Result<Vec<(String, Value)>, BuiltinError> {
    let bad = || {
        BuiltinError::invalid(format!(
            "operand {position}: element must be string or non-empty array"
        ))
    };
    let term = |v: &Value| -> Result<String, BuiltinError> {
        match v {
            Value::String(s) => Ok(s.to_string()),
            Value::Array(a) => match a.first() {
                Some(Value::String(s)) => Ok(s.to_string()),
                Some(_) => Err(BuiltinError::Operand {
                    position,
                    expected: "string",
                    actual: args::type_name(v),
                }),
                None => Err(bad()),
            },
            _ => Err(bad()),
        }
    };
    Ok(match value {
        Value::String(s) => vec![(s.to_string(), value.clone())],
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| Ok((term(v)?, Value::from(i))))
            .collect::<Result<_, BuiltinError>>()?,
        Value::Set(s) => s
            .iter()
            .map(|v| Ok((term(v)?, v.clone())))
            .collect::<Result<_, BuiltinError>>()?,
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| Ok((term(v)?, k.clone())))
            .collect::<Result<_, BuiltinError>>()?,
        other => {
            return Err(BuiltinError::Operand {
                position,
                expected: "any<string, array, object, set>",
                actual: args::type_name(other),
            })
        }
    })
}

fn cidr_contains_matches(args: &[Value]) -> Result<Value, BuiltinError> {
    let cidrs = match_terms(1, args::arg(args, 0))?;
    let addresses = match_terms(2, args::arg(args, 1))?;
    let mut matches = std::collections::BTreeSet::new();
    for (cidr, cidr_key) in &cidrs {
        for (address, address_key) in &addresses {
            if contains(cidr, address)? {
                matches.insert(args::array(vec![cidr_key.clone(), address_key.clone()]));
            }
        }
    }
    Ok(Value::from(matches))
}

/// OPA's `generateIPNet`: a network, or an IPv4 address with its classful default mask.
fn merge_input(value: &Value) -> Result<Net, BuiltinError> {
    let Value::String(text) = value else {
        return Err(BuiltinError::invalid("element must be string"));
    };
    match parse_ip(text) {
        Some(IpAddr::V4(v4)) => {
            let prefix = match v4.octets()[0] {
                0..=127 => 8,
                128..=191 => 16,
                _ => 24,
            };
            Ok(Net {
                bits: 32,
                first: u128::from(u32::from(v4)) & mask(32, prefix),
                prefix,
            })
        }
        Some(IpAddr::V6(_)) => Err(BuiltinError::invalid("IPv6 invalid: needs prefix length")),
        None => Net::parse(text),
    }
}

/// The fewest networks that cover exactly `first..=last`.
fn range_to_nets(bits: u8, mut first: u128, last: u128, out: &mut Vec<Net>) {
    loop {
        let span = last - first;
        // The largest aligned block that starts at `first` and ends within the range.
        let mut size = bits.min(first.trailing_zeros().min(128) as u8);
        while size > 0 && ones(size) > span {
            size -= 1;
        }
        out.push(Net {
            bits,
            first,
            prefix: bits - size,
        });
        let step_last = first | ones(size);
        if step_last >= last {
            return;
        }
        first = step_last + 1;
    }
}

fn cidr_merge(args: &[Value]) -> Result<Value, BuiltinError> {
    let items: Vec<&Value> = match args::arg(args, 0) {
        Value::Array(a) => a.iter().collect(),
        Value::Set(s) => s.iter().collect(),
        _ => return Err(BuiltinError::invalid("operand must be an array")),
    };
    let mut ranges: Vec<(u8, u128, u128)> = items
        .into_iter()
        .map(|v| merge_input(v).map(|n| (n.bits, n.first, n.last())))
        .collect::<Result<_, _>>()?;
    ranges.sort_unstable();
    let mut merged: Vec<(u8, u128, u128)> = Vec::new();
    for (bits, first, last) in ranges {
        match merged.last_mut() {
            Some((b, _, l)) if *b == bits && first <= l.saturating_add(1) => *l = (*l).max(last),
            _ => merged.push((bits, first, last)),
        }
    }
    let mut nets = Vec::new();
    for (bits, first, last) in merged {
        range_to_nets(bits, first, last, &mut nets);
    }
    let set: std::collections::BTreeSet<Value> =
        nets.iter().map(|n| Value::from(n.text())).collect();
    Ok(Value::from(set))
}

/// How long a name lookup may take: DNS that does not answer must not hold a decision.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(500);
/// Lookups still running after their timeout keep a thread until the resolver gives up; this
/// bounds how many such threads a flood of unresolvable names can leave behind.
const MAX_LOOKUPS: usize = 16;
static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

fn lookup_ip_addr(args: &[Value]) -> Result<Value, BuiltinError> {
    let name = args::string(args, 0)?;
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(Value::from(std::collections::BTreeSet::from([
            Value::from(ip.to_string()),
        ])));
    }
    if LOOKUPS.fetch_add(1, Ordering::AcqRel) >= MAX_LOOKUPS {
        LOOKUPS.fetch_sub(1, Ordering::AcqRel);
        return Err(BuiltinError::invalid(format!(
            "lookup {name}: too many lookups in flight"
        )));
    }
    let (send, receive) = mpsc::channel();
    let host = name.to_string();
    let spawned = std::thread::Builder::new()
        .name("lookup_ip_addr".into())
        .spawn(move || {
            let found = (host.as_str(), 0)
                .to_socket_addrs()
                .map(|addrs| addrs.map(|a| a.ip().to_string()).collect::<Vec<_>>());
            LOOKUPS.fetch_sub(1, Ordering::AcqRel);
            let _ = send.send(found);
        });
    if spawned.is_err() {
        LOOKUPS.fetch_sub(1, Ordering::AcqRel);
        return Err(BuiltinError::invalid(format!(
            "lookup {name}: cannot start the lookup"
        )));
    }
    match receive.recv_timeout(LOOKUP_TIMEOUT) {
        Ok(Ok(addresses)) => Ok(Value::from(
            addresses
                .into_iter()
                .map(Value::from)
                .collect::<std::collections::BTreeSet<_>>(),
        )),
        Ok(Err(e)) => Err(BuiltinError::invalid(format!("lookup {name}: {e}"))),
        Err(_) => Err(BuiltinError::invalid(format!("lookup {name}: i/o timeout"))),
    }
}

#[cfg(test)]
mod tests;
