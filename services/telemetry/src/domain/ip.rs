//! IP addresses are truncated before anything is stored ("Your IP address (which we use to
//! roughly determine your location)"): the network part is enough for a coarse location.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses an address and truncates it: IPv4 to its /24, IPv6 to its /48. IPv4-mapped IPv6
/// addresses are treated as IPv4.
pub fn truncate(raw: &str) -> Result<IpAddr, &'static str> {
    let ip: IpAddr = raw
        .trim()
        .parse()
        .map_err(|_| "not an IPv4 or IPv6 address")?;
    Ok(match ip {
        IpAddr::V4(v4) => IpAddr::V4(truncate_v4(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(truncate_v4(v4)),
            None => {
                let bits = u128::from(v6) & !((1u128 << 80) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    })
}

fn truncate_v4(v4: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(v4) & 0xFFFF_FF00)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn addresses_lose_their_host_part() {
        assert_eq!(
            truncate("203.0.113.77").map(|i| i.to_string()),
            Ok("203.0.113.0".into())
        );
        assert_eq!(
            truncate("2001:db8:85a3:8d3:1319:8a2e:370:7348").map(|i| i.to_string()),
            Ok("2001:db8:85a3::".into())
        );
        assert_eq!(
            truncate("::ffff:198.51.100.9").map(|i| i.to_string()),
            Ok("198.51.100.0".into())
        );
        assert!(truncate("not-an-ip").is_err());
        assert!(truncate("300.1.1.1").is_err());
    }

    proptest! {
        #[test]
        fn truncation_keeps_the_network_and_drops_the_host(a in any::<u32>(), b in any::<u128>()) {
            let v4 = truncate(&Ipv4Addr::from(a).to_string()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            prop_assert_eq!(v4, IpAddr::V4(Ipv4Addr::from(a & 0xFFFF_FF00)));
            let addr = Ipv6Addr::from(b);
            if addr.to_ipv4_mapped().is_none() {
                let v6 = truncate(&addr.to_string()).unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
                prop_assert_eq!(v6, IpAddr::V6(Ipv6Addr::from(b >> 80 << 80)));
            }
        }
    }
}
