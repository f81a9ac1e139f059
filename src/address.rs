//! Which network addresses offersync may talk to: shared vocabulary of
//! validation (a manifest naming a metadata address) and fetching (a name
//! resolving to one). Pure: no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// An address no request goes to unless the Integration allows it.
pub fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return restricted_v4(v4);
            }
            // fe80::/10 is link-local; fd00:ec2::254 is AWS's IPv6 metadata service.
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn restricted_v4(ip: Ipv4Addr) -> bool {
    // 169.254.0.0/16 holds the AWS, GCP, Azure and OCI metadata services;
    // 100.100.100.200 is Alibaba Cloud's.
    ip.is_link_local() || ip == Ipv4Addr::new(100, 100, 100, 200)
}

/// A request that would have gone to a restricted address.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{host} is {addr}, a link-local or cloud metadata address: refused (set safety.allow_link_local_addresses: true in the Integration if the network's API really is there)"
)]
pub struct RestrictedAddress {
    pub host: String,
    pub addr: IpAddr,
}

/// Refuses a URL whose host is a restricted address written as an IP
/// (hostnames are checked when they resolve, by [`GuardedResolver`]).
pub fn check_literal_host(url: &Url) -> Result<(), RestrictedAddress> {
    let addr = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_restricted(addr) {
        return Err(RestrictedAddress {
            host: url.host_str().unwrap_or_default().to_string(),
            addr,
        });
    }
    Ok(())
}
