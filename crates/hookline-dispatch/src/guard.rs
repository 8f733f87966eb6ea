//! The SSRF guard: which addresses webhook requests may go to. The address classes are core's
//! (`forbidden_reason`); this adds the addresses of the host's own interfaces, which only I/O can find, and is
//! asked both when an endpoint's URL is set (for an address written in it) and for every address a name
//! resolves to when a connection is made.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hookline_core::target::forbidden_reason;

/// How the guard treats internal addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetPolicy {
    /// Refuse every address that is not globally reachable, and the host's own (the default).
    PublicOnly,
    /// Allow every address. For tests and local demos only.
    DangerousAllowPrivate,
}

/// Why the guard refused an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{address} is {reason}; the SSRF guard refuses it")]
pub struct Refusal {
    pub address: IpAddr,
    /// What the address is, as a phrase: `a loopback address`, `an address of this host`.
    pub reason: Reason,
}

/// What kind of address was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// One of the host's own interface addresses, whatever its range.
    ThisHost,
    /// A class of core's `forbidden_reason`: `loopback`, `private`, `documentation`, …
    Class(&'static str),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::ThisHost => formatter.write_str("an address of this host"),
            Reason::Class(class) => write!(formatter, "a {class} address"),
        }
    }
}

/// Decides whether a request may go to an address. Cheap to clone; clones share what they know of the host.
#[derive(Clone)]
pub struct TargetGuard {
    policy: TargetPolicy,
    host: Arc<HostAddresses>,
}

impl std::fmt::Debug for TargetGuard {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("TargetGuard").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl TargetGuard {
    pub fn new(policy: TargetPolicy) -> TargetGuard {
        TargetGuard { policy, host: Arc::new(HostAddresses::from_interfaces()) }
    }

    /// A guard that takes `addresses` for the host's own, for tests of the rule itself.
    pub fn with_host_addresses(policy: TargetPolicy, addresses: Vec<IpAddr>) -> TargetGuard {
        TargetGuard { policy, host: Arc::new(HostAddresses::fixed(addresses)) }
    }

    pub fn policy(&self) -> TargetPolicy {
        self.policy
    }

    /// Whether a request may go to `address`.
    pub fn check(&self, address: IpAddr) -> Result<(), Refusal> {
        if self.policy == TargetPolicy::DangerousAllowPrivate {
            return Ok(());
        }
        // An IPv4 address written in IPv6 form reaches the same interface.
        let canonical = address.to_canonical();
        if self.host.contains(canonical) {
            return Err(Refusal { address, reason: Reason::ThisHost });
        }
        match forbidden_reason(address) {
            Some(class) => Err(Refusal { address, reason: Reason::Class(class) }),
            None => Ok(()),
        }
    }
}

/// The addresses of the host's interfaces, read again when asked for after `REFRESH` (interfaces come and go).
struct HostAddresses {
    source: Source,
    known: Mutex<Known>,
}

enum Source {
    Interfaces,
    Fixed,
}

struct Known {
    addresses: Arc<[IpAddr]>,
    read_at: Option<Instant>,
}

/// How long a reading of the interfaces is trusted.
const REFRESH: Duration = Duration::from_secs(5);

impl HostAddresses {
    fn from_interfaces() -> HostAddresses {
        HostAddresses {
            source: Source::Interfaces,
            known: Mutex::new(Known { addresses: Arc::from([]), read_at: None }),
        }
    }

    fn fixed(addresses: Vec<IpAddr>) -> HostAddresses {
        let known = Known { addresses: Arc::from(addresses), read_at: Some(Instant::now()) };
        HostAddresses { source: Source::Fixed, known: Mutex::new(known) }
    }

    fn contains(&self, address: IpAddr) -> bool {
        self.current().contains(&address)
    }

    fn current(&self) -> Arc<[IpAddr]> {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let stale = known.read_at.is_none_or(|read_at| read_at.elapsed() >= REFRESH);
        if matches!(self.source, Source::Interfaces) && stale {
            match if_addrs::get_if_addrs() {
                Ok(interfaces) => {
                    let mut addresses: Vec<IpAddr> =
                        interfaces.iter().map(|interface| interface.ip().to_canonical()).collect();
                    addresses.sort_unstable();
                    addresses.dedup();
                    known.addresses = Arc::from(addresses);
                }
                // The address classes still apply; the last reading stays.
                Err(error) => tracing::warn!(%error, "reading this host's interface addresses failed"),
            }
            known.read_at = Some(Instant::now());
        }
        Arc::clone(&known.addresses)
    }
}

/// This host's interface addresses as the guard sees them, for tests and diagnostics.
pub fn host_addresses() -> Vec<IpAddr> {
    HostAddresses::from_interfaces().current().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(guard: &TargetGuard, address: &str) -> Result<(), String> {
        guard.check(address.parse().unwrap()).map_err(|refusal| refusal.to_string())
    }

    #[test]
    fn the_hosts_own_addresses_are_refused_whatever_their_range() {
        let guard = TargetGuard::with_host_addresses(
            TargetPolicy::PublicOnly,
            vec!["93.184.216.34".parse().unwrap(), "2606:4700::1111".parse().unwrap()],
        );
        assert_eq!(
            check(&guard, "93.184.216.34"),
            Err("93.184.216.34 is an address of this host; the SSRF guard refuses it".into())
        );
        assert_eq!(
            check(&guard, "::ffff:93.184.216.34"),
            Err("::ffff:93.184.216.34 is an address of this host; the SSRF guard refuses it".into())
        );
        assert_eq!(
            check(&guard, "2606:4700::1111"),
            Err("2606:4700::1111 is an address of this host; the SSRF guard refuses it".into())
        );
        assert_eq!(check(&guard, "93.184.216.35"), Ok(()));
        assert_eq!(check(&guard, "10.0.0.1"), Err("10.0.0.1 is a private address; the SSRF guard refuses it".into()));
    }

    #[test]
    fn the_dangerous_policy_allows_everything() {
        let guard = TargetGuard::with_host_addresses(
            TargetPolicy::DangerousAllowPrivate,
            vec!["93.184.216.34".parse().unwrap()],
        );
        for address in ["127.0.0.1", "93.184.216.34", "169.254.169.254", "::1"] {
            assert_eq!(check(&guard, address), Ok(()), "{address}");
        }
    }

    #[test]
    fn the_interfaces_are_read() {
        // Every machine has a loopback interface.
        let addresses = host_addresses();
        assert!(addresses.contains(&"127.0.0.1".parse().unwrap()), "{addresses:?}");
    }
}
