//! Where requests may go.
//!
//! Two policies live here. Addresses: a network's host may not resolve to a
//! link-local or cloud metadata address (the classic SSRF target that hands
//! out cloud credentials) unless the Integration allows it; loopback and
//! private ranges stay allowed, since tests, demos and in-house networks use
//! them. Redirects: followed only to the same origin, or to a host the
//! Network names in `redirects.allow_hosts`, and then without credentials;
//! never to another scheme than http(s), never from https down to http.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

pub use crate::address::{RestrictedAddress, check_literal_host, is_restricted};

/// The system resolver, less the restricted addresses: checked on the
/// addresses the connection will use, so that a name which resolves (or is
/// rebound) to a metadata address is refused too.
#[derive(Debug, Default)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|error| {
                    Box::new(Unresolved {
                        host: host.clone(),
                        message: error.to_string(),
                    }) as Box<dyn std::error::Error + Send + Sync>
                })?
                .collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| !is_restricted(a.ip()))
                .collect();
            match (allowed.is_empty(), resolved.first()) {
                (true, Some(first)) => Err(Box::new(RestrictedAddress {
                    host,
                    addr: first.ip(),
                }) as _),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// A host name the system resolver could not resolve: told apart from
/// other transport errors because retrying it at once does not help (the
/// name is wrong, or the resolver is down for longer than a retry's wait).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve the host name {host:?}: {message}")]
pub struct Unresolved {
    pub host: String,
    pub message: String,
}

/// Why a redirect is not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectRefusal {
    Scheme,
    Downgrade,
    OtherHost,
    BodyToOtherHost,
}

impl std::fmt::Display for RedirectRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Scheme => "only http and https redirects are followed",
            Self::Downgrade => "a redirect from https to http is never followed",
            Self::OtherHost => {
                "redirects are followed within the same origin only; add the host to the Network's redirects.allow_hosts if it is trusted (it gets no credentials)"
            }
            Self::BodyToOtherHost => {
                "the redirect would resend the request body to another host; refused"
            }
        })
    }
}

/// Whether a redirect from `from` to `to` is followed, and with credentials
/// (`Ok(true)`: the same origin as the original request) or without.
pub fn redirect_allowed(
    original: &Url,
    from: &Url,
    to: &Url,
    allow_hosts: &[String],
    keeps_body: bool,
) -> Result<bool, RedirectRefusal> {
    if !matches!(to.scheme(), "http" | "https") {
        return Err(RedirectRefusal::Scheme);
    }
    if from.scheme() == "https" && to.scheme() == "http" {
        return Err(RedirectRefusal::Downgrade);
    }
    if to.origin() == original.origin() {
        return Ok(true);
    }
    let host = to.host_str().unwrap_or_default().to_ascii_lowercase();
    if !allow_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        return Err(RedirectRefusal::OtherHost);
    }
    if keeps_body {
        return Err(RedirectRefusal::BodyToOtherHost);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_addresses_are_restricted_loopback_is_not() {
        for ip in [
            "169.254.169.254",
            "169.254.1.1",
            "100.100.100.200",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_restricted(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "8.8.8.8"] {
            assert!(!is_restricted(ip.parse().unwrap()), "{ip}");
        }
        let url = Url::parse("http://169.254.169.254/latest/meta-data/").unwrap();
        assert!(check_literal_host(&url).is_err());
        let url = Url::parse("http://[fe80::1]:8080/").unwrap();
        assert!(check_literal_host(&url).is_err());
        assert!(check_literal_host(&Url::parse("http://127.0.0.1:9/").unwrap()).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_restricted_addresses_and_passes_the_rest() {
        use std::str::FromStr;
        // IP literals resolve without DNS: no traffic, no lookup.
        let resolve = |host: &str| GuardedResolver.resolve(Name::from_str(host).unwrap());
        let refused = match resolve("169.254.169.254").await {
            Err(e) => e,
            Ok(_) => panic!("a metadata address resolved"),
        };
        let refused = refused
            .downcast_ref::<RestrictedAddress>()
            .expect("a RestrictedAddress");
        assert_eq!(refused.addr.to_string(), "169.254.169.254");
        assert!(refused.to_string().contains("allow_link_local_addresses"));
        let addrs: Vec<SocketAddr> = resolve("127.0.0.1").await.unwrap().collect();
        assert_eq!(addrs[0].ip().to_string(), "127.0.0.1");
    }

    #[test]
    fn redirects_stay_in_the_origin_unless_a_host_is_allowed() {
        let u = |s: &str| Url::parse(s).unwrap();
        let original = u("https://api.net.example/offers?page=1");
        let allowed = vec!["cdn.net.example".to_string()];
        let check =
            |to: &str, body: bool| redirect_allowed(&original, &original, &u(to), &allowed, body);
        assert_eq!(check("https://api.net.example/v2/offers", false), Ok(true));
        assert_eq!(check("https://CDN.net.example/x", false), Ok(false));
        assert_eq!(
            check("https://evil.example/x", false),
            Err(RedirectRefusal::OtherHost)
        );
        assert_eq!(
            check("https://api.net.example:8443/", false),
            Err(RedirectRefusal::OtherHost)
        );
        assert_eq!(
            check("http://api.net.example/", false),
            Err(RedirectRefusal::Downgrade)
        );
        assert_eq!(
            check("file:///etc/passwd", false),
            Err(RedirectRefusal::Scheme)
        );
        assert_eq!(
            check("gopher://api.net.example/", false),
            Err(RedirectRefusal::Scheme)
        );
        assert_eq!(
            check("https://cdn.net.example/x", true),
            Err(RedirectRefusal::BodyToOtherHost)
        );
    }
}
